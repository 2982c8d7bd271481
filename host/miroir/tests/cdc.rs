//! Change data capture through `miroir serve` in front of development nodes: a writer adds,
//! updates and deletes documents while a webhook receiver (here, failing for a while), a
//! long-poll consumer and a NATS subscriber (a real `nats-server` with JetStream) each get every
//! acknowledged write's event; a long-poll consumer resumes from its cursor across a kill and
//! restart of Miroir.
//!
//! `nats-server` is `MIROIR_TEST_NATS_SERVER` or found on the `PATH`; when `CI` is set and it
//! cannot start, the test fails rather than skips.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gateway::{free_port, json_of, nodes_section, send, wait_for, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};
use tokio::sync::oneshot;

mod gateway;
mod instances;

const KEY: &str = "cdc-master-key";
const NODE_KEY: &str = "cdc-node-key";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// A `nats-server` child with JetStream on a free port; killed when dropped.
struct Nats {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nats {
    fn start() -> Option<Self> {
        let bin = std::env::var("MIROIR_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!(
                    "cannot start {bin} ({e}): install nats-server or set MIROIR_TEST_NATS_SERVER"
                )
            }
            Err(e) => {
                eprintln!("skipping: cannot start {bin} ({e}); set MIROIR_TEST_NATS_SERVER");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nats { port, child, _dir: dir })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many messages the JetStream stream `MIROIR_CHANGES` holds.
fn stream_messages(url: &str) -> u64 {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let jetstream = async_nats::jetstream::new(client);
        let mut stream = jetstream.get_stream("MIROIR_CHANGES").await.expect("the stream exists");
        stream.info().await.expect("stream info").state.messages
    })
}

/// A NATS subscriber on `subject`, keeping every message's JSON, on a thread of its own.
struct Subscriber {
    received: Arc<Mutex<Vec<Value>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Subscriber {
    fn start(url: String, subject: String) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the subscriber");
            runtime.block_on(async move {
                use futures_util::StreamExt as _;
                let client = async_nats::connect(url).await.expect("connect to nats");
                let mut messages = client.subscribe(subject).await.expect("subscribe");
                client.flush().await.expect("flush the subscription");
                ready_tx.send(()).expect("test waits");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        message = messages.next() => {
                            let Some(message) = message else { break };
                            let event: Value = serde_json::from_slice(&message.payload).expect("json event");
                            kept.lock().expect("lock").push(event);
                        }
                    }
                }
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(10)).expect("the subscriber starts");
        Subscriber { received, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn events(&self) -> Vec<Value> {
        self.received.lock().expect("lock").clone()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A webhook receiver that answers 503 to its first `fail_first` requests, then keeps every
/// event it is sent.
struct Receiver {
    addr: SocketAddr,
    hook: Arc<Hook>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Hook {
    fail_first: usize,
    requests: AtomicUsize,
    events: Mutex<Vec<Value>>,
}

async fn take(State(hook): State<Arc<Hook>>, Json(body): Json<Value>) -> StatusCode {
    if hook.requests.fetch_add(1, Ordering::SeqCst) < hook.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let events = body["events"].as_array().cloned().expect("a batch of events");
    hook.events.lock().expect("lock").extend(events);
    StatusCode::OK
}

impl Receiver {
    fn start(fail_first: usize) -> Self {
        let hook = Arc::new(Hook { fail_first, ..Hook::default() });
        let state = Arc::clone(&hook);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the receiver");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
                addr_tx.send(listener.local_addr().expect("address")).expect("test waits");
                let app =
                    axum::Router::new().route("/hook", axum::routing::post(take)).with_state(state);
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("serve the receiver");
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).expect("the receiver starts");
        Receiver { addr, hook, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn events(&self) -> Vec<Value> {
        self.hook.events.lock().expect("lock").clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A long-poll consumer of one index: its cursor and every event it read.
struct Consumer {
    index: String,
    cursor: u64,
    events: Vec<Value>,
}

impl Consumer {
    fn new(index: &str) -> Self {
        Consumer { index: index.to_owned(), cursor: 0, events: Vec::new() }
    }

    /// One long-poll (at most `limit` events, waiting up to 2 s); how many came.
    fn poll(&mut self, client: &reqwest::blocking::Client, base: &str, limit: usize) -> usize {
        let url = format!(
            "{base}/_miroir/changes?index={}&since={}&limit={limit}&timeout=2s",
            self.index, self.cursor
        );
        let (status, text) = send(client, "GET", &url, KEY, None);
        assert_eq!(status, 200, "{text}");
        let page: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(page["oldest"], self.cursor + 1, "nothing was dropped: {page}");
        let events = page["events"].as_array().cloned().expect("events");
        for event in &events {
            let cursor = event["cursor"].as_u64().expect("cursor");
            assert_eq!(cursor, self.cursor + 1, "cursors follow each other: {page}");
            self.cursor = cursor;
        }
        assert_eq!(page["cursor"], self.cursor, "{page}");
        self.events.extend(events.iter().cloned());
        events.len()
    }

    /// Polls until it read the events of every id in `ids` (at most 60 s).
    fn read_all(&mut self, client: &reqwest::blocking::Client, base: &str, ids: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ids_of(&self.events).is_superset(&ids.iter().cloned().collect()) {
            assert!(Instant::now() < deadline, "the consumer did not read every event");
            self.poll(client, base, 100);
        }
    }
}

fn ids_of(events: &[Value]) -> BTreeSet<String> {
    events.iter().map(|e| e["event_id"].as_str().expect("event_id").to_owned()).collect()
}

/// Every id in `expected` has an event, each id's copies are the same event, and there is no
/// other id; the events by id.
fn check_exactly(what: &str, events: &[Value], expected: &[String]) -> BTreeMap<String, Value> {
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for event in events {
        let mut event = event.clone();
        // The cursor is the log's, the same for every copy; compare the rest too.
        let id = event["event_id"].as_str().expect("event_id").to_owned();
        if let Some(first) = by_id.get(&id) {
            event["cursor"] = first["cursor"].clone();
            assert_eq!(first, &event, "{what}: a duplicate differs from the first copy");
        }
        by_id.insert(id, event);
    }
    let expected: BTreeSet<String> = expected.iter().cloned().collect();
    let got: BTreeSet<String> = by_id.keys().cloned().collect();
    assert_eq!(got, expected, "{what}: the events are exactly the acknowledged writes'");
    by_id
}

struct Writer<'a> {
    client: &'a reqwest::blocking::Client,
    ids: Vec<String>,
}

impl Writer<'_> {
    /// Sends a write and keeps the event id its 202 promises (`products:<task uid>`).
    fn write(&mut self, base: &str, method: &str, path: &str, body: Option<Value>) {
        let answer = send(self.client, method, &format!("{base}{path}"), KEY, body);
        assert_eq!(answer.0, 202, "{}", answer.1);
        let uid = json_of(answer)["taskUid"].as_u64().expect("task uid");
        self.ids.push(format!("products:{uid}"));
    }
}

fn config(nodes: &[TestNode], cdc: &str) -> String {
    format!(
        "metrics: {{ enabled: false }}\nshards: 4\ncdc: {cdc}\n{}",
        nodes_section(nodes.iter().map(TestNode::url)),
    )
}

#[test]
fn webhook_long_poll_and_nats_each_get_every_acknowledged_write() {
    let Some(nats) = Nats::start() else { return };
    let subscriber = Subscriber::start(nats.url(), "miroir.changes.products".into());
    // Fails its first four batches: delivery backs off and retries the same events.
    let receiver = Receiver::start(4);
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let cdc = format!(
        "{{ enabled: true, include_documents: true, sinks: {{ webhook: {{ url: \"{}\", batch_size: 3 }}, nats: {{ url: \"{}\" }} }} }}",
        receiver.url(),
        nats.url()
    );
    let miroir = Gateway::start(dir.path(), &config(&nodes, &cdc), KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = client();
    let mut writer = Writer { client: &client, ids: Vec::new() };
    let docs = |from: u64, n: u64, title: &str| {
        Value::Array((from..from + n).map(|i| json!({"id": i, "title": title})).collect())
    };
    writer.write(&base, "POST", "/indexes/products/documents", Some(docs(0, 20, "phone")));
    for round in 0..5 {
        writer.write(
            &base,
            "POST",
            "/indexes/products/documents",
            Some(docs(20 + round * 4, 4, "case")),
        );
        writer.write(
            &base,
            "PUT",
            "/indexes/products/documents",
            Some(docs(round * 2, 2, "phone 2")),
        );
    }
    writer.write(&base, "DELETE", "/indexes/products/documents/3", None);
    writer.write(&base, "POST", "/indexes/products/documents/delete-batch", Some(json!([4, 5])));
    writer.write(
        &base,
        "POST",
        "/indexes/products/documents/delete",
        Some(json!({"filter": "id > 100"})),
    );

    let mut consumer = Consumer::new("products");
    consumer.read_all(&client, &base, &writer.ids);
    let polled = check_exactly("long-poll", &consumer.events, &writer.ids);
    assert_eq!(consumer.events.len(), writer.ids.len(), "long-poll reads each event once");
    let first = &polled[&writer.ids[0]];
    assert_eq!(first["operation"], "documentAdditionOrUpdate", "{first}");
    assert_eq!(first["index"], "products");
    assert_eq!(first["primary_keys"].as_array().map(Vec::len), Some(20), "{first}");
    assert!(first["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{first}");
    assert_eq!(first["documents"][19], json!({"id": 19, "title": "phone"}), "{first}");
    assert!(polled[&writer.ids[11]].get("documents").is_none(), "deletions carry none");
    // A consumer knows whether to replace the stored documents (POST) or merge into them (PUT).
    assert_eq!(first["partial_update"], false, "{first}");
    let update = &polled[&writer.ids[2]];
    assert_eq!(update["partial_update"], true, "{update}");
    assert_eq!(update["documents"][0], json!({"id": 0, "title": "phone 2"}), "{update}");
    assert!(polled[&writer.ids[11]].get("partial_update").is_none(), "only on additions");
    let by_id = &polled[&writer.ids[11]];
    assert_eq!(by_id["operation"], "documentDeletion", "{by_id}");
    assert_eq!(by_id["primary_keys"], json!(["3"]), "{by_id}");
    let batch = &polled[&writer.ids[12]];
    assert_eq!(batch["primary_keys"], json!(["4", "5"]), "{batch}");
    let uid: u64 = writer.ids[12]["products:".len()..].parse().expect("uid");
    assert_eq!(batch["task_uid"], uid);

    wait_for(Duration::from_secs(60), "the webhook's events", || {
        ids_of(&receiver.events()).len() == writer.ids.len()
    });
    check_exactly("webhook", &receiver.events(), &writer.ids);
    assert!(receiver.hook.requests.load(Ordering::SeqCst) > 4, "the failed batches were retried");
    wait_for(Duration::from_secs(60), "the NATS events", || {
        ids_of(&subscriber.events()).len() == writer.ids.len()
    });
    check_exactly("nats", &subscriber.events(), &writer.ids);
    assert_eq!(stream_messages(&nats.url()), writer.ids.len() as u64, "JetStream kept each once");
    let log = std::fs::read_to_string(dir.path().join("miroir.log")).unwrap_or_default();
    assert!(log.contains("publishing change events to JetStream"), "{log}");

    let metrics = send(&client, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in the metrics"))
    };
    assert_eq!(value("miroir_cdc_events_total "), writer.ids.len() as f64);
    assert!(value("miroir_cdc_sink_failures_total{sink=\"webhook\"} ") >= 4.0);
    assert_eq!(value("miroir_cdc_events_dropped_total{reason=\"buffer_full\"} "), 0.0);
}

#[test]
fn a_long_poll_consumer_resumes_from_its_cursor_after_miroir_is_killed() {
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&nodes, "{ enabled: true }");
    let client = client();
    let mut writer = Writer { client: &client, ids: Vec::new() };
    let mut consumer = Consumer::new("products");
    let mut miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    for i in 0..10 {
        writer.write(&miroir.base, "POST", "/indexes/products/documents", Some(json!([{"id": i}])));
    }
    // Part of the stream read, then the gateway is killed (SIGKILL, no shutdown).
    assert_eq!(consumer.poll(&client, &miroir.base, 4), 4);
    let kept = consumer.cursor;
    drop(miroir);
    miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    for i in 10..20 {
        writer.write(
            &miroir.base,
            "DELETE",
            &format!("/indexes/products/documents/{}", i - 10),
            None,
        );
    }
    assert_eq!(consumer.cursor, kept);
    consumer.read_all(&client, &miroir.base, &writer.ids);
    check_exactly("long-poll across a restart", &consumer.events, &writer.ids);
    assert_eq!(consumer.events.len(), 20, "each event read once");

    // Caught up: a poll waits its timeout, then answers nothing with the same cursor.
    assert_eq!(consumer.poll(&client, &miroir.base, 10), 0);
    assert_eq!(consumer.cursor, 20);
    // A write during a poll answers it.
    let base = miroir.base.clone();
    let poller = std::thread::spawn(move || {
        let client = self::client();
        let url = format!("{base}/_miroir/changes?index=products&since=20&timeout=20s");
        json_of(send(&client, "GET", &url, KEY, None))
    });
    std::thread::sleep(Duration::from_millis(300));
    writer.write(&miroir.base, "POST", "/indexes/products/documents", Some(json!([{"id": 99}])));
    let page = poller.join().expect("poller");
    assert_eq!(page["events"][0]["event_id"], writer.ids[20], "{page}");
    assert_eq!(page["cursor"], 21, "{page}");

    // Bad queries answer in Meilisearch's error shape.
    for query in
        ["since=1", "index=products&since=x", "index=products&limit=0", "index=products&timeout=1h"]
    {
        let (status, text) =
            send(&client, "GET", &format!("{}/_miroir/changes?{query}", miroir.base), KEY, None);
        assert_eq!(status, 400, "{query}: {text}");
        assert!(text.contains("miroir_invalid_query"), "{query}: {text}");
    }
}

#[test]
fn changes_answer_feature_disabled_when_cdc_is_off() {
    let nodes: Vec<TestNode> = (0..1).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let miroir = Gateway::start(
        dir.path(),
        &format!(
            "metrics: {{ enabled: false }}\n{}",
            nodes_section(nodes.iter().map(TestNode::url))
        ),
        KEY,
        NODE_KEY,
    );
    let (status, text) = send(
        &client(),
        "GET",
        &format!("{}/_miroir/changes?index=products", miroir.base),
        KEY,
        None,
    );
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("miroir_feature_disabled"), "{text}");
}

/// Applies change events to `documents` (by primary key) as a consumer does: additions and
/// updates from the events' documents (replaced for `POST`, merged for `PUT`), deletions by id.
fn apply_events(documents: &mut BTreeMap<String, Value>, events: &[Value]) {
    for event in events {
        match event["operation"].as_str() {
            Some("documentAdditionOrUpdate") => {
                let merge = event["partial_update"] == true;
                for document in event["documents"].as_array().expect("documents in the event") {
                    let id = document["id"].to_string();
                    match documents.get_mut(&id) {
                        Some(Value::Object(stored)) if merge => {
                            for (k, v) in document.as_object().expect("an object") {
                                stored.insert(k.clone(), v.clone());
                            }
                        }
                        _ => {
                            documents.insert(id, document.clone());
                        }
                    }
                }
            }
            Some("documentDeletion") => {
                let keys = event["primary_keys"].as_array().expect("primary keys");
                assert!(!keys.is_empty(), "deletions by id only here: {event}");
                for key in keys {
                    documents.remove(key.as_str().expect("a key"));
                }
            }
            other => panic!("unexpected operation {other:?}: {event}"),
        }
    }
}

/// The export's documents by primary key, and the keys exported more than once.
fn export_lines(text: &str) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut documents = BTreeMap::new();
    let mut repeated = Vec::new();
    for line in text.lines() {
        let document: Value = serde_json::from_str(line).expect("an NDJSON line");
        let id = document["id"].to_string();
        if documents.insert(id.clone(), document).is_some() {
            repeated.push(id);
        }
    }
    (documents, repeated)
}

#[test]
fn an_export_and_the_events_after_head_rebuild_the_index_while_documents_are_deleted() {
    use std::io::BufRead as _;
    const DOCUMENTS: u64 = 8000;
    // Big documents, so the export's stream is far from written ahead into socket buffers when
    // the deletions start.
    let pad = "x".repeat(1500);
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(&nodes, "{ enabled: true, include_documents: true }");
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = client();
    let documents = |ids: &mut dyn Iterator<Item = u64>, pad: &str| {
        Value::Array(ids.map(|i| json!({"id": i, "pad": pad})).collect())
    };
    for from in (0..DOCUMENTS).step_by(1000) {
        let answer = send(
            &client,
            "POST",
            &format!("{base}/indexes/products/documents"),
            KEY,
            Some(documents(&mut (from..from + 1000), &pad)),
        );
        gateway::wait_task(&client, &base, KEY, answer);
    }
    let original: BTreeMap<String, Value> =
        (0..DOCUMENTS).map(|i| (i.to_string(), json!({"id": i, "pad": pad}))).collect();

    // Snapshot: `head`, then the export, read slowly while writes go on.
    let page = json_of(send(
        &client,
        "GET",
        &format!("{base}/_miroir/changes?index=products&timeout=0&limit=1"),
        KEY,
        None,
    ));
    let head = page["head"].as_u64().expect("head");
    let export = client
        .get(format!("{base}/_miroir/indexes/products/documents/export"))
        .bearer_auth(KEY)
        .timeout(Duration::from_secs(300))
        .send()
        .expect("the export answers");
    assert_eq!(export.status().as_u16(), 200);
    let lines = std::io::BufReader::new(export).lines();
    // Eight rounds, each deleting a spread of documents of every shard (ids ≡ 3 mod 10), updating
    // a few (≡ 7 mod 10) and adding new ones, each waited for until the nodes applied it.
    let rounds = 8;
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut round = 0;
    let writes = |round: u64| {
        let deleted: Vec<u64> =
            (0..DOCUMENTS).filter(|i| i % 10 == 3 && (i / 10) % rounds == round).collect();
        let updated: Vec<u64> =
            (0..DOCUMENTS).filter(|i| i % 10 == 7 && (i / 10) % (rounds * 4) == round).collect();
        let added: Vec<u64> = (0..20).map(|k| DOCUMENTS + round * 20 + k).collect();
        let mut ids = Vec::new();
        for (method, path, body) in [
            ("POST", "/indexes/products/documents/delete-batch", json!(deleted)),
            ("PUT", "/indexes/products/documents", {
                Value::Array(updated.iter().map(|i| json!({"id": i, "pad": "updated"})).collect())
            }),
            ("POST", "/indexes/products/documents", documents(&mut added.iter().copied(), "new")),
        ] {
            let answer = send(&client, method, &format!("{base}{path}"), KEY, Some(body));
            ids.push(format!("products:{}", json_of(answer.clone())["taskUid"]));
            gateway::wait_task(&client, &base, KEY, answer);
        }
        let all = deleted.iter().chain(&updated).chain(&added);
        (ids, all.map(u64::to_string).collect::<Vec<_>>())
    };
    let mut write_ids = Vec::new();
    let mut exported = String::new();
    let mut read = 0;
    for line in lines {
        exported.push_str(&line.expect("a line of the export"));
        exported.push('\n');
        read += 1;
        if read % 600 == 0 && round < rounds {
            let (ids, keys) = writes(round);
            write_ids.extend(ids);
            touched.extend(keys);
            round += 1;
        }
    }
    eprintln!("{round} of {rounds} rounds of writes ran during the export");
    while round < rounds {
        let (ids, keys) = writes(round);
        write_ids.extend(ids);
        touched.extend(keys);
        round += 1;
    }
    let (mut snapshot, repeated) = export_lines(&exported);
    let gaps: Vec<&String> = original
        .keys()
        .filter(|id| !touched.contains(*id) && !snapshot.contains_key(*id))
        .collect();
    assert!(
        gaps.is_empty(),
        "{} untouched documents missing from the export: {gaps:?}",
        gaps.len()
    );
    assert!(repeated.is_empty(), "exported more than once: {repeated:?}");
    for (id, document) in &original {
        if !touched.contains(id) {
            assert_eq!(&snapshot[id], document, "{id} as written");
        }
    }

    // The events after `head` bring the snapshot to the index's final state.
    let mut consumer = Consumer::new("products");
    consumer.cursor = head;
    consumer.read_all(&client, &base, &write_ids);
    apply_events(&mut snapshot, &consumer.events);
    let (status, text) = send(
        &client,
        "GET",
        &format!("{base}/_miroir/indexes/products/documents/export"),
        KEY,
        None,
    );
    assert_eq!(status, 200, "{text}");
    let (now, repeated) = export_lines(&text);
    assert!(repeated.is_empty(), "exported more than once: {repeated:?}");
    assert_eq!(now.len(), DOCUMENTS as usize - 800 + 160, "the final index");
    assert!(snapshot == now, "export + events differ from the final index");
}

/// Two instances on one Redis task store, written to at the same time: each instance's
/// long-poll queue reads the one log of the index (its own events and the other's, in log
/// order, without a gap), and the webhook (delivered by the leader alone) gets every event.
#[test]
fn two_instances_on_redis_share_one_change_log() {
    let Some(redis) = instances::redis_url() else { return };
    let receiver = Receiver::start(0);
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = instances::fresh_prefix("cdc-two");
    let start = |name: &str| {
        let cdc =
            format!("{{ enabled: true, sinks: {{ webhook: {{ url: \"{}\" }} }} }}", receiver.url());
        let (redis, prefix, nodes) = (redis.clone(), prefix.clone(), config(&nodes, &cdc));
        Gateway::start_whole(dir.path(), name, KEY, NODE_KEY, move |port| {
            format!(
                "server: {{ bind: 127.0.0.1, port: {port} }}\n\
                 task_store: {{ backend: redis, url: \"{redis}\", key_prefix: \"{prefix}\" }}\n\
                 replicas: 2\ninstance_id: {name}\n\
                 leader: {{ lease_ttl: 2s, renew_interval: 500ms }}\n{nodes}"
            )
        })
    };
    let (a, b) = (start("a"), start("b"));
    let http = client();
    let created = send(
        &http,
        "POST",
        &format!("{}/indexes", a.base),
        KEY,
        Some(json!({"uid": "products", "primaryKey": "id"})),
    );
    assert_eq!(created.0, 202, "{}", created.1);

    // Both instances write while a consumer of instance `a` reads.
    let writers: Vec<_> = [a.base.clone(), b.base.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, base)| {
            std::thread::spawn(move || {
                let client = client();
                let mut writer = Writer { client: &client, ids: Vec::new() };
                for i in 0..15u64 {
                    let id = w as u64 * 1000 + i;
                    let doc = json!([{"id": id, "title": format!("case {id}")}]);
                    writer.write(&base, "POST", "/indexes/products/documents", Some(doc));
                }
                writer.ids
            })
        })
        .collect();
    let mut on_a = Consumer::new("products");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writers.iter().all(JoinHandle::is_finished) {
        assert!(Instant::now() < deadline, "the writers did not finish");
        on_a.poll(&http, &a.base, 7);
    }
    let ids: Vec<String> = writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
    assert_eq!(ids.len(), 30);
    on_a.read_all(&http, &a.base, &ids);
    check_exactly("long-poll on a", &on_a.events, &ids);
    assert_eq!(on_a.events.len(), ids.len(), "each event once, in one log");
    // The other instance serves the same log, in the same order.
    let mut on_b = Consumer::new("products");
    on_b.read_all(&http, &b.base, &ids);
    let order = |events: &[Value]| -> Vec<String> {
        events.iter().map(|e| e["event_id"].as_str().expect("id").to_owned()).collect()
    };
    assert_eq!(order(&on_b.events), order(&on_a.events));

    wait_for(Duration::from_secs(60), "the webhook's events", || {
        ids_of(&receiver.events()).len() == ids.len()
    });
    check_exactly("webhook", &receiver.events(), &ids);
}
