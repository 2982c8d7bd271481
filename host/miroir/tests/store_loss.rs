//! Losing the task store loses nothing, with real processes: `miroir serve` binaries in front of
//! development nodes, on a `redis-server` this test owns (emptied with `FLUSHALL` under load)
//! or on a SQLite file (removed, then corrupted, while Miroir is stopped).
//!
//! What must hold after the loss: searches answer the same totals again within seconds, writes
//! keep the index's original shard count (checked per document on the nodes, with instances
//! whose configured default differs), no task uid is given twice, nothing acknowledged is lost,
//! and two instances on the wiped Redis agree on the catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const MASTER_KEY: &str = "store-loss-master-key";
const NODE_KEY: &str = "store-loss-node-key";
/// The shard count the index is created with; the instances started later default to others.
const SHARDS: u32 = 3;
const INDEX: &str = "w";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// A `redis-server` child on a free port, without persistence; killed when dropped. Fails when
/// `CI` is set and the server cannot start, skips (None) elsewhere.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Option<Self> {
        let bin =
            std::env::var("MIROIR_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("cannot start {bin} ({e}): set MIROIR_TEST_REDIS_SERVER in CI")
            }
            Err(e) => {
                eprintln!("skipping: cannot start {bin} ({e}); set MIROIR_TEST_REDIS_SERVER");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis { port, child })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `FLUSHALL`, as an operator replacing Redis by a fresh one sees it.
    fn flush_all(&self) {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let client = redis::Client::open(self.url()).expect("redis client");
            let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
            let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("FLUSHALL");
        });
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `miroir serve`; killed when dropped.
struct Miroir {
    child: Child,
    base: String,
}

impl Miroir {
    /// Starts `miroir serve` in `dir` with `config` (YAML without `server`), waits for `/health`.
    fn start(dir: &Path, name: &str, config: &str) -> Self {
        let miroir = Self::spawn(dir, name, config);
        let deadline = Instant::now() + Duration::from_secs(60);
        while client().get(format!("{}/health", miroir.base)).send().is_err() {
            assert!(Instant::now() < deadline, "miroir {name} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        miroir
    }

    /// Starts the process without waiting for it to listen.
    fn spawn(dir: &Path, name: &str, config: &str) -> Self {
        let port = free_port();
        let path = dir.join(format!("{name}.yaml"));
        let config = format!(
            "server: {{ bind: 127.0.0.1, port: {port} }}\nmetrics: {{ enabled: false }}\n{config}"
        );
        std::fs::write(&path, config).expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_miroir"))
            .current_dir(dir)
            .args(["serve", "--config"])
            .arg(&path)
            .env("MIROIR_MASTER_KEY", MASTER_KEY)
            .env("MIROIR_NODE_MASTER_KEY", NODE_KEY)
            .env_remove("MIROIR_ADMIN_API_KEY")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file"))
            .spawn()
            .expect("start miroir");
        Miroir { child, base: format!("http://127.0.0.1:{port}") }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = client()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", self.base),
            )
            .bearer_auth(MASTER_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send() {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Waits until `/_miroir/ready` answers 200.
    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.call("GET", "/_miroir/ready", None);
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "not ready: {status} {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let text = client()
            .get(format!("{}/_miroir/metrics", self.base))
            .bearer_auth(MASTER_KEY)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_default();
        text.lines()
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                (series == name).then(|| value.parse().expect("a number"))
            })
            .unwrap_or(0.0)
    }

    fn search_total(&self) -> (u16, u64) {
        let (status, body) = self.call(
            "POST",
            &format!("/indexes/{INDEX}/search"),
            Some(json!({"q": "", "limit": 0})),
        );
        (status, body["estimatedTotalHits"].as_u64().unwrap_or(0))
    }

    /// Waits until every task of this instance that is still known has finished.
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.call("GET", "/tasks?statuses=enqueued,processing&limit=1", None);
            if body["results"].as_array().is_some_and(Vec::is_empty) {
                return;
            }
            assert!(Instant::now() < deadline, "tasks still running: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Miroir {
    fn drop(&mut self) {
        self.kill();
    }
}

fn nodes_section(nodes: &[TestNode]) -> String {
    let mut section = String::from("nodes:\n");
    for (i, node) in nodes.iter().enumerate() {
        section.push_str(&format!(
            "  - {{ id: n{i}, address: \"{}\", replica_group: g }}\n",
            node.url()
        ));
    }
    section
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Every task uid a write was acknowledged with.
    uids: Vec<u64>,
    /// Every document id of an acknowledged write.
    acknowledged: BTreeSet<String>,
    /// Writes answered with something else than 202 (status, body).
    refused: Vec<(u16, String)>,
    /// Searches: when, status, total.
    searches: Vec<(Instant, u16, u64)>,
}

/// Writes (new ids, plus an older id written again) and searches through `instances`, round
/// robin, until `stop`.
fn run_load(
    instances: Vec<Arc<Miroir>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let next_id = Arc::new(AtomicU64::new(1_000));
    let mut threads = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        let (miroir, stop_w, seen_w, next_id) =
            (Arc::clone(instance), Arc::clone(&stop), Arc::clone(&seen), Arc::clone(&next_id));
        threads.push(std::thread::spawn(move || {
            let (stop, seen) = (stop_w, seen_w);
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) {
                round += 1;
                let first = next_id.fetch_add(4, Ordering::SeqCst);
                let mut ids: Vec<String> = (first..first + 4).map(|n| format!("d{n}")).collect();
                // An id written before, so a wrong shard count would duplicate it.
                ids.push(format!(
                    "d{}",
                    1_000 + (round * 7 + i as u64) % first.max(1).saturating_sub(1_000).max(1)
                ));
                let docs: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"id": id, "title": format!("doc {id}"), "writer": i}))
                    .collect();
                let (status, body) = miroir.call(
                    "POST",
                    &format!("/indexes/{INDEX}/documents"),
                    Some(Value::from(docs)),
                );
                let mut seen = seen.lock().expect("seen");
                if status == 202 {
                    seen.uids.push(body["taskUid"].as_u64().expect("a task uid"));
                    seen.acknowledged.extend(ids);
                } else {
                    seen.refused.push((status, body.to_string()));
                }
            }
        }));
        let (miroir, stop, seen) = (Arc::clone(instance), Arc::clone(&stop), Arc::clone(&seen));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let (status, total) = miroir.search_total();
                seen.lock().expect("seen").searches.push((Instant::now(), status, total));
                std::thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    threads
}

/// Every document on the nodes: id → the shards it was found in (one entry per copy).
fn documents_on_nodes(nodes: &[TestNode]) -> BTreeMap<String, Vec<u32>> {
    let mut found: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for node in nodes {
        let response = client()
            .get(format!("{}/indexes/{INDEX}/documents?limit=1000000", node.url()))
            .bearer_auth(NODE_KEY)
            .send()
            .expect("node answers");
        let body: Value = response.json().expect("json");
        for doc in body["results"].as_array().expect("documents") {
            let id = doc["id"].as_str().expect("string ids").to_owned();
            let marker = doc["_miroir_shard"].as_object().expect("a shard marker");
            let shard: u32 = marker
                .keys()
                .next()
                .and_then(|k| k.strip_prefix('s'))
                .and_then(|n| n.parse().ok())
                .expect("s<N>");
            found.entry(id).or_default().push(shard);
        }
    }
    found
}

/// Every document is on the nodes once, in the shard the original shard count gives it.
fn assert_routed_with_original_shard_count(
    nodes: &[TestNode],
    acknowledged: &BTreeSet<String>,
) -> usize {
    let found = documents_on_nodes(nodes);
    for id in acknowledged {
        assert!(found.contains_key(id), "acknowledged document {id} is lost");
    }
    for (id, shards) in &found {
        let expected = miroir_cluster::shard_of(id, SHARDS).get();
        assert_eq!(
            shards,
            &vec![expected],
            "document {id}: copies in shards {shards:?}, expected once in {expected}"
        );
    }
    found.len()
}

fn assert_unique(uids: &[u64]) {
    let distinct: BTreeSet<u64> = uids.iter().copied().collect();
    assert_eq!(distinct.len(), uids.len(), "a task uid was given twice");
}

#[test]
fn flushing_redis_under_load_loses_nothing_and_both_instances_agree() {
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = vec![TestNode::start(Some(NODE_KEY)), TestNode::start(Some(NODE_KEY))];
    let store = format!(
        "task_store: {{ backend: redis, url: \"{}\", key_prefix: \"miroir:\" }}\nreplicas: 2\n",
        redis.url()
    );
    let a = Miroir::start(
        dir.path(),
        "a",
        &format!("{}shards: {SHARDS}\n{store}", nodes_section(&nodes)),
    );
    // The second instance's default shard count differs: after the wipe it must still route
    // with the index's own.
    let b = Miroir::start(dir.path(), "b", &format!("{}shards: 7\n{store}", nodes_section(&nodes)));
    a.wait_ready(Duration::from_secs(20));
    b.wait_ready(Duration::from_secs(20));
    let (status, created) =
        a.call("POST", "/indexes", Some(json!({"uid": INDEX, "primaryKey": "id"})));
    assert_eq!(status, 202, "{created}");
    let a = Arc::new(a);
    let b = Arc::new(b);
    let (_, before) = a.call("GET", &format!("/indexes/{INDEX}"), None);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let load = run_load(vec![Arc::clone(&a), Arc::clone(&b)], Arc::clone(&stop), Arc::clone(&seen));
    std::thread::sleep(Duration::from_secs(2));
    let first_uid = seen.lock().expect("seen").uids.first().copied().expect("writes went through");
    let total_before = {
        let seen = seen.lock().expect("seen");
        seen.searches
            .iter()
            .rev()
            .find(|(_, s, _)| *s == 200)
            .map(|(_, _, t)| *t)
            .expect("searches")
    };

    let wiped_at = Instant::now();
    redis.flush_all();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::SeqCst);
    for thread in load {
        thread.join().expect("load thread");
    }
    a.wait_idle();
    b.wait_idle();

    let seen = seen.lock().expect("seen");
    assert!(seen.refused.is_empty(), "writes refused around the wipe: {:?}", seen.refused);
    assert_unique(&seen.uids);
    let after_wipe: Vec<&(Instant, u16, u64)> =
        seen.searches.iter().filter(|(at, _, _)| *at > wiped_at).collect();
    let recovered = after_wipe
        .iter()
        .find(|(_, status, total)| *status == 200 && *total >= total_before)
        .map(|(at, _, _)| at.duration_since(wiped_at))
        .expect("searches answer again after the wipe");
    let failed = after_wipe.iter().filter(|(_, status, _)| *status != 200).count();
    eprintln!(
        "searches answered the full total again {recovered:?} after FLUSHALL \
         ({failed} of {} searches after it failed)",
        after_wipe.len()
    );
    // Writes after the wipe got uids above the mark published before it, not 1, 2, ...
    assert!(seen.uids.iter().any(|uid| *uid > 10_000), "no write went through after the wipe");
    assert!(recovered < Duration::from_secs(3), "took {recovered:?}");
    let late_failures: Vec<_> = after_wipe
        .iter()
        .filter(|(at, status, total)| {
            at.duration_since(wiped_at) > Duration::from_secs(3)
                && (*status != 200 || *total < total_before)
        })
        .collect();
    assert!(late_failures.is_empty(), "searches still failing: {late_failures:?}");

    // Nothing acknowledged is lost, nothing is routed with another shard count.
    let on_nodes = assert_routed_with_original_shard_count(&nodes, &seen.acknowledged);
    for miroir in [&a, &b] {
        let (status, total) = miroir.search_total();
        assert_eq!((status, total), (200, on_nodes as u64), "one copy of every document");
    }

    // Both instances agree on the catalog, and it is the one recorded before the wipe.
    let (_, index_a) = a.call("GET", &format!("/indexes/{INDEX}"), None);
    let (_, index_b) = b.call("GET", &format!("/indexes/{INDEX}"), None);
    assert_eq!(index_a, before);
    assert_eq!(index_b, before);
    for miroir in [&a, &b] {
        let (_, shards) = miroir.call("GET", &format!("/_miroir/shards?index={INDEX}"), None);
        assert_eq!(shards[INDEX]["shardCount"], SHARDS);
        let (_, list) = miroir.call("GET", "/indexes", None);
        assert_eq!(list["total"], 1, "{list}");
    }

    // A uid from before the wipe whose record is gone is not another task.
    let (status, body) = a.call("GET", &format!("/tasks/{first_uid}"), None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "task_not_found");
    let rebuilds =
        a.metric("miroir_catalog_rebuilds_total") + b.metric("miroir_catalog_rebuilds_total");
    let restored = a.metric("miroir_catalog_indexes_restored_total")
        + b.metric("miroir_catalog_indexes_restored_total");
    let sequences = a.metric("miroir_task_sequence_restores_total")
        + b.metric("miroir_task_sequence_restores_total");
    assert!(
        rebuilds >= 1.0 && restored >= 1.0 && sequences >= 1.0,
        "{rebuilds} {restored} {sequences}"
    );
    eprintln!(
        "{} writes acknowledged, {} documents, {} searches",
        seen.uids.len(),
        on_nodes,
        seen.searches.len()
    );
}

#[test]
fn a_removed_or_corrupt_sqlite_file_is_rebuilt_from_the_nodes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = vec![TestNode::start(Some(NODE_KEY)), TestNode::start(Some(NODE_KEY))];
    let config = |shards: u32| {
        format!("{}shards: {shards}\ntask_store: {{ path: miroir.db }}\n", nodes_section(&nodes))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));

    let first = Arc::new(Miroir::start(dir.path(), "first", &config(SHARDS)));
    first.wait_ready(Duration::from_secs(20));
    let (status, created) =
        first.call("POST", "/indexes", Some(json!({"uid": INDEX, "primaryKey": "id"})));
    assert_eq!(status, 202, "{created}");
    first.wait_idle();
    let (_, before) = first.call("GET", &format!("/indexes/{INDEX}"), None);
    let load = run_load(vec![Arc::clone(&first)], Arc::clone(&stop), Arc::clone(&seen));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for thread in load {
        thread.join().expect("load thread");
    }
    first.wait_idle();
    // Stopped: the last handle kills the process.
    drop(first);
    let mut total_before =
        assert_routed_with_original_shard_count(&nodes, &seen.lock().expect("seen").acknowledged);
    let mut last_uid_before =
        seen.lock().expect("seen").uids.iter().copied().max().expect("writes");

    for phase in ["removed", "corrupt"] {
        match phase {
            "removed" => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.path().join(format!("miroir.db{suffix}")));
                }
            }
            _ => {
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(dir.path().join(format!("miroir.db{suffix}")));
                }
                std::fs::write(dir.path().join("miroir.db"), b"not a database ".repeat(512))
                    .expect("corrupt the file");
            }
        }
        // Started with another default shard count: the index keeps its own.
        let miroir = Arc::new(Miroir::start(dir.path(), phase, &config(11)));
        miroir.wait_ready(Duration::from_secs(20));
        let (status, total) = miroir.search_total();
        assert_eq!((status, total), (200, total_before as u64), "{phase}: the same total");
        let (_, index) = miroir.call("GET", &format!("/indexes/{INDEX}"), None);
        assert_eq!(index, before, "{phase}: the catalog as recorded");
        let (status, body) = miroir.call("GET", &format!("/tasks/{last_uid_before}"), None);
        assert_eq!((status, body["code"].as_str()), (404, Some("task_not_found")), "{phase}");

        stop.store(false, Ordering::SeqCst);
        let uids_before = seen.lock().expect("seen").uids.len();
        let load = run_load(vec![Arc::clone(&miroir)], Arc::clone(&stop), Arc::clone(&seen));
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        for thread in load {
            thread.join().expect("load thread");
        }
        miroir.wait_idle();
        let seen = seen.lock().expect("seen");
        assert!(seen.refused.is_empty(), "{phase}: writes refused: {:?}", seen.refused);
        assert!(seen.uids.len() > uids_before, "{phase}: writes went through");
        assert!(
            seen.uids[uids_before..].iter().all(|uid| *uid > last_uid_before),
            "{phase}: new uids above every uid handed out before"
        );
        assert_unique(&seen.uids);
        let on_nodes = assert_routed_with_original_shard_count(&nodes, &seen.acknowledged);
        assert_eq!(miroir.search_total(), (200, on_nodes as u64), "{phase}");
        total_before = on_nodes;
        assert_eq!(miroir.metric("miroir_catalog_indexes_restored_total"), 1.0, "{phase}");
        assert_eq!(miroir.metric("miroir_task_sequence_restores_total"), 1.0, "{phase}");
        last_uid_before = seen.uids.iter().copied().max().expect("writes");
        if phase == "corrupt" {
            let kept = std::fs::read_dir(dir.path())
                .expect("dir")
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("miroir.db.corrupt-"));
            assert!(kept, "the corrupt file is kept aside");
        }
    }
}

/// While the catalog is being rebuilt from the nodes, `/_miroir/ready` answers 503 and says
/// why; once the rebuild is done it answers 200 and the index is served as before.
#[test]
fn ready_is_503_while_the_catalog_is_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = vec![TestNode::start(Some(NODE_KEY)), TestNode::start(Some(NODE_KEY))];
    let config =
        format!("{}shards: {SHARDS}\ntask_store: {{ path: miroir.db }}\n", nodes_section(&nodes));
    let first = Miroir::start(dir.path(), "first", &config);
    first.wait_ready(Duration::from_secs(20));
    let (status, _) =
        first.call("POST", "/indexes", Some(json!({"uid": INDEX, "primaryKey": "id"})));
    assert_eq!(status, 202);
    let documents: Vec<Value> =
        (0..30).map(|i| json!({"id": i, "title": format!("t{i}")})).collect();
    let (status, _) =
        first.call("POST", &format!("/indexes/{INDEX}/documents"), Some(Value::Array(documents)));
    assert_eq!(status, 202);
    first.wait_idle();
    drop(first);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("miroir.db{suffix}")));
    }

    // Slow nodes keep the rebuild running long enough to be seen.
    for node in &nodes {
        node.set_response_delay(Duration::from_millis(400));
    }
    let miroir = Miroir::spawn(dir.path(), "second", &config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut not_ready = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "never ready; answers seen: {not_ready:?}");
        match miroir.call("GET", "/_miroir/ready", None) {
            (200, _) => break,
            (0, _) => {}
            (status, body) => not_ready.push((status, body["reason"].as_str().map(str::to_owned))),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        not_ready.iter().any(|(status, reason)| *status == 503
            && reason.as_deref().is_some_and(|r| r.contains("catalog"))),
        "503 while the catalog was rebuilt: {not_ready:?}"
    );
    for node in &nodes {
        node.set_response_delay(Duration::ZERO);
    }
    assert_eq!(miroir.search_total(), (200, 30));
    assert_eq!(miroir.metric("miroir_catalog_indexes_restored_total"), 1.0);
}

/// The catalog Miroir keeps on the nodes is invisible to clients and cannot be written.
#[test]
fn the_catalog_on_the_nodes_is_hidden_and_reserved() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = vec![TestNode::start(Some(NODE_KEY))];
    let miroir = Miroir::start(
        dir.path(),
        "reserved",
        &format!("{}shards: 2\ntask_store: {{ path: miroir.db }}\n", nodes_section(&nodes)),
    );
    miroir.wait_ready(Duration::from_secs(20));
    let (status, _) =
        miroir.call("POST", "/indexes", Some(json!({"uid": INDEX, "primaryKey": "id"})));
    assert_eq!(status, 202);
    miroir.wait_idle();
    // The node does hold the catalog.
    let on_node = client()
        .get(format!("{}/indexes/_miroir_catalog/documents", nodes[0].url()))
        .bearer_auth(NODE_KEY)
        .send()
        .expect("node answers");
    assert_eq!(on_node.status().as_u16(), 200);

    let (_, list) = miroir.call("GET", "/indexes", None);
    assert_eq!(list["total"], 1, "{list}");
    let (_, stats) = miroir.call("GET", "/stats", None);
    assert!(stats["indexes"].get("_miroir_catalog").is_none(), "{stats}");
    for path in [
        "/indexes/_miroir_catalog",
        "/indexes/_miroir_catalog/settings",
        "/indexes/_miroir_catalog/documents",
        "/indexes/_miroir_catalog/stats",
    ] {
        let (status, body) = miroir.call("GET", path, None);
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("index_not_found")),
            "{path}: {body}"
        );
    }
    let (status, body) =
        miroir.call("POST", "/indexes/_miroir_catalog/search", Some(json!({"q": ""})));
    assert_eq!((status, body["code"].as_str()), (404, Some("index_not_found")), "{body}");

    let writes = [
        ("POST", "/indexes".to_owned(), json!({"uid": "_miroir_catalog"})),
        ("POST", "/indexes/_miroir_catalog/documents".to_owned(), json!([{"id": "x"}])),
        ("POST", "/indexes/_miroir_other/documents".to_owned(), json!([{"id": "x"}])),
        ("PATCH", "/indexes/_miroir_catalog/settings".to_owned(), json!({"stopWords": ["a"]})),
        ("DELETE", "/indexes/_miroir_catalog".to_owned(), Value::Null),
        ("POST", "/swap-indexes".to_owned(), json!([{"indexes": [INDEX, "_miroir_catalog"]}])),
    ];
    for (method, path, body) in writes {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = miroir.call(method, &path, body);
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "miroir_reserved_index", "{method} {path}");
        assert_eq!(answer["type"], "invalid_request");
    }
}
