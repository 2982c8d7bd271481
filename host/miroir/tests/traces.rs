//! OpenTelemetry traces through `miroir serve` in front of development nodes, exported over
//! OTLP/HTTP or OTLP/gRPC to a collector this test runs (it decodes the protobuf
//! `ExportTraceServiceRequest`, posted or sent to the gRPC `TraceService`):
//! the request span joins the client's `traceparent`, each node called is a child span whose
//! context the node receives, a plugin's hook call is a span of the same trace, sampling follows
//! the client's decision, and with the collector gone requests are served as before while the
//! spans that could not be delivered are counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use gateway::{nodes_section, plugins_dir, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message as _;
use serde_json::{json, Value};
use tokio::sync::oneshot;

mod gateway;

const KEY: &str = "traces-master-key";
const NODE_KEY: &str = "traces-node-key";
/// The client's trace and span ids, as its `traceparent` names them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

/// How the collector receives spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `POST /v1/traces` with a protobuf body.
    Http,
    /// The gRPC `TraceService`.
    Grpc,
}

/// An OTLP trace receiver on 127.0.0.1, keeping every span it is sent; stops when dropped.
struct Collector {
    protocol: Protocol,
    addr: SocketAddr,
    spans: Spans,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(protocol: Protocol) -> Self {
        let spans = Spans::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let kept = Arc::clone(&spans);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the collector");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the collector");
                addr_tx.send(listener.local_addr().expect("address")).expect("test waits");
                let stopped = async {
                    let _ = stop_rx.await;
                };
                match protocol {
                    Protocol::Http => {
                        let app = axum::Router::new()
                            .route("/v1/traces", axum::routing::post(export))
                            .with_state(kept);
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stopped)
                            .await
                            .expect("serve the collector");
                    }
                    Protocol::Grpc => {
                        tonic::transport::Server::builder()
                            .add_service(TraceServiceServer::new(GrpcCollector(kept)))
                            .serve_with_incoming_shutdown(
                                tonic::transport::server::TcpIncoming::from(listener),
                                stopped,
                            )
                            .await
                            .expect("serve the collector");
                    }
                }
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("the collector starts");
        Collector { protocol, addr, spans, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("spans lock").clone()
    }

    /// Waits (at most 20 s) for a span matching `check`, and returns it.
    fn wait_span(&self, what: &str, check: impl Fn(&ReceivedSpan) -> bool) -> ReceivedSpan {
        let mut found = None;
        wait_for(Duration::from_secs(20), what, || {
            found = self.spans().into_iter().find(|s| check(s));
            found.is_some()
        });
        found.expect("found")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `POST /v1/traces`: an `ExportTraceServiceRequest` in protobuf.
async fn export(State(spans): State<Spans>, body: Bytes) -> axum::response::Response {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, "not an ExportTraceServiceRequest").into_response();
    };
    keep(&spans, request);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    ([(header::CONTENT_TYPE, "application/x-protobuf")], answer).into_response()
}

/// The gRPC `TraceService`.
struct GrpcCollector(Spans);

#[tonic::async_trait]
impl TraceService for GrpcCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Keeps the spans of an export request.
fn keep(spans: &Spans, request: ExportTraceServiceRequest) {
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| attributes(&r.attributes));
        let service = resource.and_then(|r| r.get("service.name").cloned()).unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.push(ReceivedSpan {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: attributes(&span.attributes),
            });
        }
    }
    spans.lock().expect("spans lock").extend(received);
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Cluster {
    nodes: Vec<TestNode>,
    dir: tempfile::TempDir,
    _miroir: Gateway,
    base: String,
    client: reqwest::blocking::Client,
}

impl Cluster {
    /// Three development nodes, eight shards, the `test_hooks` plugin's `after-response` hook,
    /// JSON logs, and traces exported to `collector` (over its protocol) with the given
    /// `telemetry` keys.
    fn start(collector: &Collector, telemetry: &str) -> Self {
        let telemetry = match collector.protocol {
            Protocol::Http => telemetry.to_owned(),
            Protocol::Grpc => format!(", otlp_protocol: grpc{telemetry}"),
        };
        let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let component = plugins_dir("test_hooks.wasm").join("test_hooks.wasm");
        let config = format!(
            "server: {{ bind: 127.0.0.1, port: PORT }}\ntask_store: {{ path: miroir.db }}\n\
             metrics: {{ enabled: false }}\nshards: 8\n\
             telemetry: {{ log_format: json, otlp_endpoint: \"{}\", service_name: miroir-traces{telemetry} }}\n\
             plugins: {{ custom: [{{ name: recorder, component: \"{}\", config: {{ hooks: [after-response] }} }}] }}\n{}",
            collector.endpoint(),
            component.display(),
            nodes_section(nodes.iter().map(TestNode::url)),
        );
        // A short batch delay, so spans reach the collector within the test's patience.
        let env = [("OTEL_BSP_SCHEDULE_DELAY", "100"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")];
        let miroir =
            Gateway::start_whole_with_env(dir.path(), "miroir", KEY, NODE_KEY, &env, |port| {
                config.replace("PORT", &port.to_string())
            });
        let base = miroir.base.clone();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let cluster = Cluster { nodes, dir, _miroir: miroir, base, client };
        let answer =
            cluster.send("POST", "/indexes", Some(json!({"uid": "products", "primaryKey": "id"})));
        wait_task(&cluster.client, &cluster.base, KEY, answer);
        let docs: Vec<Value> = (0..40).map(|i| json!({"id": i, "title": "phone"})).collect();
        let answer = cluster.send("POST", "/indexes/products/documents", Some(Value::Array(docs)));
        wait_task(&cluster.client, &cluster.base, KEY, answer);
        cluster
    }

    fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        send(&self.client, method, &format!("{}{path}", self.base), KEY, body)
    }

    /// A search for `phone`, with `traceparent` when given; status and body.
    fn search(&self, traceparent: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/indexes/products/search", self.base))
            .bearer_auth(KEY)
            .json(&json!({"q": "phone", "limit": 5}));
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent).header("tracestate", "client=abc");
        }
        let response = request.send().expect("an answer");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// The value of the metric sample starting with `prefix`.
    fn metric(&self, prefix: &str) -> Option<f64> {
        let text = self.send("GET", "/_miroir/metrics", None).1;
        text.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|v| v.trim().parse().ok())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("miroir.log")).unwrap_or_default()
    }
}

/// Searches with the client's `traceparent` and checks the trace the collector receives: the
/// request span, a node-call span per node (whose context the node received), the plugin's
/// span. Returns the answer and the request span.
fn search_is_traced(collector: &Collector, cluster: &Cluster) -> (Value, ReceivedSpan) {
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let (status, answer) = cluster.search(Some(&traceparent));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["estimatedTotalHits"], 40, "{answer}");

    // The request span continues the client's trace, as a child of the client's span.
    let request = collector.wait_span("the search's request span", |s| {
        s.trace_id == TRACE_ID && s.attribute("http.route") == "/indexes/{uid}/search"
    });
    assert_eq!(request.name, "POST /indexes/{uid}/search");
    assert_eq!(request.parent_span_id, CLIENT_SPAN);
    assert_eq!(request.service, "miroir-traces");
    assert_eq!(request.attribute("index"), "products");
    assert_eq!(request.attribute("http.response.status_code"), "200");
    let fanout: u64 = request.attribute("fanout").parse().expect("fanout");
    assert!(fanout >= 3, "{request:?}");

    // One child span per node called, each asking for its shards; together, every shard.
    let node_calls: Vec<ReceivedSpan> = collector
        .spans()
        .into_iter()
        .filter(|s| {
            s.parent_span_id == request.span_id
                && s.attribute("url.path") == "/indexes/products/search"
        })
        .collect();
    let mut called: Vec<&str> = node_calls.iter().map(|s| s.attribute("node")).collect();
    called.sort();
    assert_eq!(called, ["n0", "n1", "n2"], "{node_calls:#?}");
    let shards: u64 =
        node_calls.iter().map(|s| s.attribute("shards").parse::<u64>().expect("shards")).sum();
    assert_eq!(shards, 8, "{node_calls:#?}");
    for call in &node_calls {
        assert_eq!(call.trace_id, TRACE_ID);
        assert_eq!(call.attribute("http.response.status_code"), "200", "{call:?}");
        assert!(call.attribute("response_bytes").parse::<u64>().expect("bytes") > 0, "{call:?}");
    }

    // Each node received the trace, with its own node-call span as the parent.
    for (i, node) in cluster.nodes.iter().enumerate() {
        let span =
            node_calls.iter().find(|s| s.attribute("node") == format!("n{i}")).expect("span");
        let expected = format!("00-{TRACE_ID}-{}-01", span.span_id);
        let received = node.received_traces();
        let search = received
            .iter()
            .find(|t| t.path == "/indexes/products/search" && t.traceparent.contains(TRACE_ID))
            .unwrap_or_else(|| panic!("n{i} got no traceparent of the trace: {received:#?}"));
        assert_eq!(search.traceparent, expected);
        assert_eq!(search.tracestate.as_deref(), Some("client=abc"));
    }

    // The plugin's after-response call is a span of the same trace.
    let plugin = collector.wait_span("the plugin call span", |s| {
        s.trace_id == TRACE_ID && s.attribute("plugin") == "recorder"
    });
    assert_eq!(plugin.attribute("hook"), "after-response");
    assert_eq!(plugin.attribute("outcome"), "ok");
    assert_eq!(plugin.parent_span_id, request.span_id);
    (answer, request)
}

/// With the collector gone, searches are answered as before and undelivered spans are counted.
fn export_failures_are_counted(collector: Collector, cluster: &Cluster, answer: &Value) {
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    assert_eq!(cluster.metric("miroir_trace_spans_dropped_total "), Some(0.0));
    drop(collector);
    for _ in 0..5 {
        let (status, again) = cluster.search(Some(&traceparent));
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["hits"], answer["hits"]);
    }
    wait_for(Duration::from_secs(20), "dropped spans counted", || {
        cluster.metric("miroir_trace_spans_dropped_total ").is_some_and(|n| n > 0.0)
    });
}

#[test]
fn a_search_is_traced_through_every_node_and_plugin_and_export_failures_are_counted() {
    let collector = Collector::start(Protocol::Http);
    let cluster = Cluster::start(&collector, "");
    let (answer, request) = search_is_traced(&collector, &cluster);
    let fanout: u64 = request.attribute("fanout").parse().expect("fanout");

    // One JSON log line for the request, with its figures and the trace id.
    let line = cluster
        .log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "request served" && l["trace_id"] == TRACE_ID)
        .expect("a request line with the trace id");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["route"], "/indexes/{uid}/search", "{line}");
    assert_eq!(line["method"], "POST", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["fanout"], fanout, "{line}");
    assert_eq!(line["degraded"], "", "{line}");
    assert!(line["duration_ms"].as_f64().is_some_and(|d| d > 0.0), "{line}");

    // The collector goes away: searches are answered as before, undelivered spans are counted.
    export_failures_are_counted(collector, &cluster, &answer);
}

#[test]
fn a_search_is_traced_over_grpc_and_export_failures_are_counted() {
    let collector = Collector::start(Protocol::Grpc);
    let cluster = Cluster::start(&collector, "");
    let (answer, _) = search_is_traced(&collector, &cluster);
    wait_for(Duration::from_secs(10), "the gRPC export named in the log", || {
        cluster.log().contains("exporting traces over OTLP/gRPC")
    });
    export_failures_are_counted(collector, &cluster, &answer);
}

#[test]
fn sampling_follows_the_clients_decision_and_the_ratio_for_new_traces() {
    let collector = Collector::start(Protocol::Http);
    let cluster = Cluster::start(&collector, ", sampling_ratio: 0.0");
    // Not sampled: a new trace at ratio 0, and a client trace the client did not sample.
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    assert_eq!(cluster.search(None).0, 200);
    assert_eq!(cluster.search(Some(unsampled)).0, 200);
    // Sampled by the client: exported whatever the ratio.
    let sampled = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    assert_eq!(cluster.search(Some(&sampled)).0, 200);
    collector.wait_span("the sampled request span", |s| {
        s.trace_id == TRACE_ID && s.attribute("http.route") == "/indexes/{uid}/search"
    });
    // Exported in order: the earlier searches' spans would have come by now.
    std::thread::sleep(Duration::from_millis(500));
    let searches: Vec<ReceivedSpan> = collector
        .spans()
        .into_iter()
        .filter(|s| s.attribute("http.route") == "/indexes/{uid}/search")
        .collect();
    assert_eq!(searches.len(), 1, "{searches:#?}");
    // The nodes still receive the unsampled client trace, flagged as not sampled.
    let received: Vec<_> = cluster.nodes.iter().flat_map(TestNode::received_traces).collect();
    assert!(
        received.iter().any(|t| t.traceparent.starts_with("00-11111111111111111111111111111111-")
            && t.traceparent.ends_with("-00")),
        "{received:#?}"
    );
}
