//! Pooled keep-alive HTTP clients to the nodes.
//!
//! One hyper client (HTTP/1.1, `hyper_util`'s pooled client) is shared by every node, so
//! connections are pooled per host and reused across requests. It is hyper without a wrapper:
//! every search pays each layer of the client, and reqwest's (URL parsing with IDNA, redirect
//! and retry layers) showed in profiles of the search path. Every call has a time limit; a node that does not answer
//! in time is reported as [`NodeError::Timeout`], one that cannot be reached as
//! [`NodeError::Unreachable`]. Any HTTP answer, error statuses included, is a [`NodeResponse`]:
//! deciding what a node's 4xx means is the caller's job.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
pub use http::Method;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use miroir_types::NodeId;
use tracing::Instrument as _;

use crate::health::HealthRegistry;
pub use crate::node_body::NodeBody;
use crate::node_body::PartsBody;
use crate::trace_context::{self, RequestFigures};

/// The header carrying the client request's id to the nodes.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The client request a node request is made for.
struct RequestScope {
    id: String,
    figures: Arc<RequestFigures>,
}

tokio::task_local! {
    static REQUEST: RequestScope;
    static SHARDS: usize;
}

/// Runs `future` with `id` as the request id every node request made inside it carries (as
/// `X-Request-Id`), so a node's log lines can be matched with the client request.
pub async fn with_request_id<F: std::future::Future>(id: String, future: F) -> F::Output {
    with_request(id, RequestFigures::new(), future).await
}

/// [`with_request_id`], counting the node requests made inside `future` in `figures`.
pub async fn with_request<F: std::future::Future>(
    id: String,
    figures: Arc<RequestFigures>,
    future: F,
) -> F::Output {
    REQUEST.scope(RequestScope { id, figures }, future).await
}

/// Runs `future` (one node request) as asking for `shards` shards, which its span reports.
pub async fn for_shards<F: std::future::Future>(shards: usize, future: F) -> F::Output {
    SHARDS.scope(shards, future).await
}

/// Why a node gave no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The connection failed or broke before an answer arrived.
    #[error("node `{node}` is unreachable: {reason}")]
    Unreachable {
        /// The node.
        node: NodeId,
        /// What failed, for the log.
        reason: String,
    },
    /// The node did not answer within the time limit.
    #[error("node `{node}` did not answer within {timeout:?}")]
    Timeout {
        /// The node.
        node: NodeId,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// The topology names a node Miroir has no client for.
    #[error("no client for node `{0}`")]
    UnknownNode(NodeId),
}

/// An HTTP answer from a node, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, byte for byte.
    pub body: Bytes,
}

impl NodeResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, `Null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Which credentials a request to a node carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAuth<'a> {
    /// The node key from configuration (or nothing when none is configured).
    NodeKey,
    /// A client's own `Authorization` header value, so the node enforces that key's rights.
    Client(&'a str),
}

/// The pooled HTTP/1.1 client every node client shares.
type Http = Client<HttpConnector, PartsBody>;

fn http_client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// The client of one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    id: NodeId,
    base: String,
    /// `Bearer <node key>`, when a node key is configured.
    key: Option<HeaderValue>,
    http: Http,
    timeout: Duration,
    /// Told of every answer, so a node answering requests counts as alive.
    health: Option<Arc<HealthRegistry>>,
}

impl NodeClient {
    /// The node this client talks to.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The node's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `method path` (path with its query string) and returns the node's answer, with the
    /// client's default time limit.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<NodeBody>,
        auth: NodeAuth<'_>,
    ) -> Result<NodeResponse, NodeError> {
        self.send_with_timeout(method, path, body, auth, self.timeout).await
    }

    /// [`NodeClient::send`] with an explicit time limit.
    pub async fn send_with_timeout(
        &self,
        method: Method,
        path: &str,
        body: Option<NodeBody>,
        auth: NodeAuth<'_>,
        timeout: Duration,
    ) -> Result<NodeResponse, NodeError> {
        let span = tracing::info_span!(
            "node_call",
            otel.name = %format_args!("node {} {}", self.id, method),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            node = %self.id,
            http.request.method = %method,
            url.path = path.split('?').next().unwrap_or(path),
            shards = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            response_bytes = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        if let Ok(shards) = SHARDS.try_with(|shards| *shards) {
            span.record("shards", shards);
        }
        let request = self.request(method, path, body, auth, &span);
        let started = Instant::now();
        let response = async {
            let request = request?;
            let answer = async {
                let response = self.http.request(request).await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
                Ok::<_, String>(NodeResponse { status, body: body.to_bytes() })
            };
            match tokio::time::timeout(timeout, answer).await {
                Ok(answer) => answer.map_err(CallError::Failed),
                Err(_) => Err(CallError::TimedOut),
            }
        };
        let response = response.instrument(span.clone()).await;
        match &response {
            Ok(answer) => {
                span.record("http.response.status_code", answer.status);
                span.record("response_bytes", answer.body.len());
                if answer.status >= 500 {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(error) => {
                span.record("error", tracing::field::display(error));
                span.record("otel.status_code", "ERROR");
            }
        }
        crate::node_timing::observed(&self.id, path, started.elapsed());
        if let (Some(health), Ok(answer)) = (&self.health, &response) {
            if answer.status < 500 {
                health.answered(&self.id, started.elapsed());
            }
        }
        response.map_err(|error| match error {
            CallError::TimedOut => NodeError::Timeout { node: self.id.clone(), timeout },
            CallError::Failed(reason) => NodeError::Unreachable { node: self.id.clone(), reason },
        })
    }

    /// The HTTP request for `method path`, with the credentials, the trace context of `span`,
    /// the request id and the body.
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<NodeBody>,
        auth: NodeAuth<'_>,
        span: &tracing::Span,
    ) -> Result<http::Request<PartsBody>, CallError> {
        let invalid = |what: &str| CallError::Failed(format!("invalid {what} for a node request"));
        let uri: http::Uri =
            format!("{}{}", self.base, path).parse().map_err(|_| invalid("URL"))?;
        let mut request = http::Request::new(NodeBody::none());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for (name, value) in trace_context::headers_for(span) {
            let name = HeaderName::try_from(name).map_err(|_| invalid("trace header"))?;
            let value = HeaderValue::try_from(value).map_err(|_| invalid("trace header"))?;
            headers.insert(name, value);
        }
        match auth {
            NodeAuth::NodeKey => {
                if let Some(key) = &self.key {
                    headers.insert(AUTHORIZATION, key.clone());
                }
            }
            NodeAuth::Client(header) => {
                let value = HeaderValue::from_str(header).map_err(|_| invalid("Authorization"))?;
                headers.insert(AUTHORIZATION, value);
            }
        }
        let request_id = REQUEST.try_with(|scope| {
            scope.figures.count_node_call();
            HeaderValue::from_str(&scope.id)
        });
        if let Ok(Ok(id)) = request_id {
            headers.insert(REQUEST_ID_HEADER, id);
        }
        if let Some(body) = body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(body.content_type));
            *request.body_mut() = body.into_sent();
        }
        Ok(request)
    }
}

/// Why a node call gave no answer, before it is told as a [`NodeError`].
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("no answer in time")]
    TimedOut,
    #[error("{0}")]
    Failed(String),
}

/// The clients of every node, sharing one connection pool.
#[derive(Debug, Clone)]
pub struct NodeClients {
    by_id: BTreeMap<NodeId, NodeClient>,
    http: Http,
    key: Option<HeaderValue>,
    timeout: Duration,
    health: Option<Arc<HealthRegistry>>,
}

impl Default for NodeClients {
    fn default() -> Self {
        NodeClients {
            by_id: BTreeMap::new(),
            http: http_client(),
            key: None,
            timeout: Duration::ZERO,
            health: None,
        }
    }
}

impl NodeClients {
    /// Clients for `nodes` (id, base URL), sending `node_key` as a bearer token and giving up
    /// on a request after `timeout`. Fails only if the TLS/HTTP stack cannot be set up.
    pub fn new(
        nodes: impl IntoIterator<Item = (NodeId, String)>,
        node_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, NodeError> {
        let key = node_key
            .map(|key| HeaderValue::from_str(&format!("Bearer {key}")))
            .transpose()
            .map_err(|_| NodeError::Unreachable {
            node: NodeId::new("client").expect("a valid literal id"),
            reason: "the node key is not a valid header value".to_owned(),
        })?;
        let empty =
            NodeClients { by_id: BTreeMap::new(), http: http_client(), key, timeout, health: None };
        Ok(empty.with_nodes(nodes))
    }

    /// Clients for `nodes` sharing this set's connection pool, key, timeout and health
    /// registry (the fleet changed).
    pub fn with_nodes(&self, nodes: impl IntoIterator<Item = (NodeId, String)>) -> Self {
        let by_id = nodes
            .into_iter()
            .map(|(id, base)| {
                let base = base.trim_end_matches('/').to_owned();
                let client = NodeClient {
                    id: id.clone(),
                    base,
                    key: self.key.clone(),
                    http: self.http.clone(),
                    timeout: self.timeout,
                    health: self.health.clone(),
                };
                (id, client)
            })
            .collect();
        NodeClients {
            by_id,
            http: self.http.clone(),
            key: self.key.clone(),
            timeout: self.timeout,
            health: self.health.clone(),
        }
    }

    /// The clients, each telling `health` when its node answers (see
    /// [`HealthRegistry::answered`]).
    pub fn observed_by(mut self, health: Arc<HealthRegistry>) -> Self {
        for client in self.by_id.values_mut() {
            client.health = Some(Arc::clone(&health));
        }
        self.health = Some(health);
        self
    }

    /// The client of `node`.
    pub fn get(&self, node: &NodeId) -> Result<&NodeClient, NodeError> {
        self.by_id.get(node).ok_or_else(|| NodeError::UnknownNode(node.clone()))
    }

    /// Every client, by node id.
    pub fn iter(&self) -> impl Iterator<Item = &NodeClient> {
        self.by_id.values()
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(address: String, timeout: Duration) -> NodeClients {
        let id = NodeId::new("n1").expect("id");
        NodeClients::new([(id, address)], Some("node-key".into()), timeout).expect("clients")
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        drop(listener);
        let clients = clients(format!("http://{address}/"), Duration::from_secs(5));
        let client = clients.get(&NodeId::new("n1").expect("id")).expect("client");
        assert_eq!(client.base_url(), format!("http://{address}"));
        let error = client.send(Method::GET, "/health", None, NodeAuth::NodeKey).await;
        assert!(matches!(error, Err(NodeError::Unreachable { .. })), "{error:?}");
    }

    #[tokio::test]
    async fn requests_carry_the_node_key_and_the_request_id() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buffer = vec![0; 4096];
            let n = socket.read(&mut buffer).await.expect("read");
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .expect("write");
            String::from_utf8_lossy(&buffer[..n]).to_lowercase()
        });
        let clients = clients(format!("http://{address}"), Duration::from_secs(5));
        let client = clients.get(&NodeId::new("n1").expect("id")).expect("client");
        let call = client.send(Method::GET, "/health", None, NodeAuth::NodeKey);
        let response = with_request_id("req-42".into(), call).await.expect("answer");
        assert!(response.is_success());
        let request = server.await.expect("server");
        assert!(request.contains("authorization: bearer node-key"), "{request}");
        assert!(request.contains("x-request-id: req-42"), "{request}");
    }

    #[tokio::test]
    async fn a_silent_node_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let clients = clients(format!("http://{address}"), Duration::from_millis(200));
        let client = clients.get(&NodeId::new("n1").expect("id")).expect("client");
        let error = client.send(Method::GET, "/health", None, NodeAuth::NodeKey).await;
        assert!(matches!(error, Err(NodeError::Timeout { .. })), "{error:?}");
        hold.abort();
        assert!(clients.get(&NodeId::new("other").expect("id")).is_err());
    }
}
