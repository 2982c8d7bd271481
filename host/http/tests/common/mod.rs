//! The integration harness: development nodes, Miroir in front of them on `127.0.0.1:0`, a real
//! SQLite task store in a temporary directory, and a client with bounded waits.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use miroir_config::{Config, NodeConfig, Secret};
use miroir_devnode::testing::TestNode;
use miroir_http::{router, AppState};
use miroir_store_sqlite::{SqliteConfig, SqliteStore};
use miroir_types::{GroupId, NodeId};
use serde_json::Value;

/// The key every node is started with and Miroir sends to them.
pub const NODE_KEY: &str = "node-master-key-for-tests";

/// The directory holding the shared datasets and contract.
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MIROIR_SHARED_DIR") {
        return PathBuf::from(dir);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        dir.join("datasets").is_dir(),
        "shared dir not found at {}: set MIROIR_SHARED_DIR",
        dir.display()
    );
    dir
}

/// Runs `contract.py record` against `url` for `scenario` into `out` (emptied first, since
/// `record` appends); the process output.
pub fn contract_record(url: &str, key: &str, scenario: &Path, out: &Path) -> std::process::Output {
    let _ = std::fs::remove_file(out);
    std::process::Command::new("python3")
        .arg(shared_dir().join("contract/contract.py"))
        .args(["record", "--url", url, "--key", key, "--out"])
        .arg(out)
        .arg(scenario)
        .output()
        .expect("python3 records the scenario")
}

/// Runs `contract.py check` of `recording` against `url`; the process output.
pub fn contract_check(url: &str, key: &str, recording: &Path) -> std::process::Output {
    std::process::Command::new("python3")
        .arg(shared_dir().join("contract/contract.py"))
        .args(["check", "--url", url, "--key", key])
        .arg(recording)
        .output()
        .expect("python3 runs the contract")
}

/// `method path` with `body` as JSON, to Miroir or a node at `base` with `key`: the status and
/// the JSON answer (`null` when empty).
pub async fn call_json(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(30));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let body =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") };
    (status, body)
}

/// The 2,000 products.
/// Runs `tests/sdk/<script>` (a Python script driving the official SDK) with `args`; its
/// standard output. Fails the test, with both outputs, when the script fails.
pub async fn run_sdk_script(script: &str, args: Vec<String>) -> String {
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").arg(path).args(args).output().expect("python3 runs")
    })
    .await
    .expect("sdk thread");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python SDK failed (is `meilisearch` installed? .ci/run installs it):\n{stdout}\n{stderr}"
    );
    stdout
}

pub fn products() -> Vec<Value> {
    let path = shared_dir().join("datasets/products-2k.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("products parse")
}

/// Creates `products` with the first `count` products (filterable `brand`, sortable `price`) and
/// waits for every task; the documents sent.
pub async fn load_products(cluster: &Cluster, count: usize) -> Vec<Value> {
    cluster
        .send_and_wait(
            "POST",
            "/indexes",
            &serde_json::json!({"uid": "products", "primaryKey": "id"}),
        )
        .await;
    let documents = products()[..count].to_vec();
    let task = cluster
        .send_and_wait("POST", "/indexes/products/documents", &Value::from(documents.clone()))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let task = cluster
        .send_and_wait(
            "PATCH",
            "/indexes/products/settings",
            &serde_json::json!({"filterableAttributes": ["brand"], "sortableAttributes": ["price"]}),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    documents
}

/// A change to the configuration a cluster starts with.
type ConfigChange = Box<dyn FnOnce(&mut Config)>;

/// How to build a cluster.
pub struct ClusterBuilder {
    groups: usize,
    per_group: usize,
    rf: u32,
    shards: u32,
    master_key: Option<String>,
    max_body_bytes: Option<u64>,
    store_dir: Option<PathBuf>,
    task_delay: Duration,
    configure: Option<ConfigChange>,
    health_probes: bool,
    vector_search: bool,
}

/// Development nodes with Miroir in front.
pub struct Cluster {
    pub nodes: Vec<Option<TestNode>>,
    pub node_ids: Vec<NodeId>,
    pub url: String,
    pub addr: SocketAddr,
    pub master_key: Option<String>,
    pub state: AppState,
    pub http: reqwest::Client,
    pub config: Config,
    pub store_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    server: tokio::task::JoinHandle<()>,
    prober: Option<tokio::task::JoinHandle<()>>,
}

impl ClusterBuilder {
    pub fn new(groups: usize, per_group: usize, rf: u32) -> Self {
        ClusterBuilder {
            groups,
            per_group,
            rf,
            shards: 64,
            master_key: None,
            max_body_bytes: None,
            store_dir: None,
            task_delay: Duration::ZERO,
            configure: None,
            health_probes: false,
            vector_search: false,
        }
    }

    /// Changes the configuration Miroir starts with (after the builder's own settings).
    pub fn configure(mut self, change: impl FnOnce(&mut Config) + 'static) -> Self {
        self.configure = Some(Box::new(change));
        self
    }

    /// Runs the health prober alongside the server, probing every 100 ms and taking a node down
    /// after 2 failed probes.
    pub fn health_probes(mut self) -> Self {
        self.health_probes = true;
        self
    }

    /// Turns `vector_search` on: the vector-search plugin (`make plugins`) serves vector and
    /// hybrid searches and `similar`, through the gateway's hooks.
    pub fn vector_search(mut self) -> Self {
        self.vector_search = true;
        self
    }

    pub fn master_key(mut self, key: &str) -> Self {
        self.master_key = Some(key.to_owned());
        self
    }

    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards;
        self
    }

    /// Nodes keep each task `processing` this long.
    pub fn task_delay(mut self, delay: Duration) -> Self {
        self.task_delay = delay;
        self
    }

    pub fn max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    pub async fn start(self) -> Cluster {
        let mut nodes = Vec::new();
        let mut configs = Vec::new();
        let mut ids = Vec::new();
        for g in 0..self.groups {
            for n in 0..self.per_group {
                let node = TestNode::start_with_delay(Some(NODE_KEY), self.task_delay);
                let id = NodeId::new(format!("g{g}-n{n}")).expect("node id");
                configs.push(NodeConfig {
                    id: id.clone(),
                    address: node.url(),
                    replica_group: Some(GroupId::new(format!("g{g}")).expect("group")),
                });
                ids.push(id);
                nodes.push(Some(node));
            }
        }
        let mut config = Config {
            nodes: configs,
            shards: self.shards,
            replication_factor: self.rf,
            ..Config::default()
        };
        config.secrets.master_key = self.master_key.as_deref().map(Secret::new);
        config.secrets.node_master_key = Some(Secret::new(NODE_KEY));
        // Generous: the equality suites run many searches at once on a loaded CI machine, where a
        // debug-build node can take seconds; a timeout there would make the answer partial.
        // Tests of timeouts and failover set their own.
        config.scatter.node_timeout = miroir_config::HumanDuration::from_secs(30);
        if let Some(bytes) = self.max_body_bytes {
            config.server.max_body_bytes = bytes;
        }
        if self.health_probes {
            config.health.interval = miroir_config::HumanDuration::from_millis(100);
            config.health.timeout = miroir_config::HumanDuration::from_millis(80);
            config.health.down_after = 2;
        }
        config.vector_search.enabled = self.vector_search;
        if let Some(change) = self.configure {
            change(&mut config);
        }
        let (temp, store_dir) = match self.store_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().to_owned();
                (Some(temp), dir)
            }
        };
        let (addr, state, server) = serve(&config, &store_dir).await;
        let prober = self.health_probes.then(|| miroir_http::health::spawn_prober(state.clone()));
        Cluster {
            nodes,
            node_ids: ids,
            url: format!("http://{addr}"),
            addr,
            master_key: self.master_key,
            state,
            http: reqwest::Client::new(),
            config,
            store_dir,
            _temp: temp,
            server,
            prober,
        }
    }
}

/// Serves Miroir for `config` with a SQLite store in `dir` (with the vector-search plugin when
/// `vector_search.enabled`).
pub async fn serve(
    config: &Config,
    dir: &std::path::Path,
) -> (SocketAddr, AppState, tokio::task::JoinHandle<()>) {
    serve_with_plugins(config, dir, config.vector_search.enabled).await
}

/// [`serve`], loading the vector-search plugin only when `plugins` (benchmarks compare a gateway
/// without it).
pub async fn serve_with_plugins(
    config: &Config,
    dir: &std::path::Path,
    plugins: bool,
) -> (SocketAddr, AppState, tokio::task::JoinHandle<()>) {
    let store =
        SqliteStore::open(SqliteConfig::new(dir.join("miroir.db"))).await.expect("sqlite store");
    let state = AppState::new(config.clone(), Arc::new(store)).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    if plugins {
        install_vector_search(config, &state).await;
    }
    let app = router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (addr, state, server)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(prober) = &self.prober {
            prober.abort();
        }
    }
}

/// An HTTP answer: status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Cluster {
    fn key(&self) -> Option<&str> {
        self.master_key.as_deref()
    }

    /// Restarts Miroir (same store file, same nodes).
    pub async fn restart_miroir(&mut self) {
        self.server.abort();
        let (addr, state, server) = serve(&self.config, &self.store_dir).await;
        self.url = format!("http://{addr}");
        self.addr = addr;
        self.state = state;
        self.server = server;
        if let Some(prober) = self.prober.take() {
            prober.abort();
            self.prober = Some(miroir_http::health::spawn_prober(self.state.clone()));
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .timeout(Duration::from_secs(60));
        if let Some(key) = self.key() {
            request = request.bearer_auth(key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.expect("miroir answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None, &[]).await
    }

    pub async fn send_json(&self, method: &str, path: &str, body: &Value) -> Answer {
        self.call(
            method,
            path,
            Some(("application/json", serde_json::to_vec(body).expect("json"))),
            &[],
        )
        .await
    }

    /// Polls `GET /tasks/{uid}` until the task is finished (at most 60 s).
    pub async fn wait_task(&self, uid: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let task = self.get(&format!("/tasks/{uid}")).await;
            assert_eq!(task.status, 200, "{:?}", task.body);
            if matches!(task.body["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
                return task.body;
            }
            assert!(Instant::now() < deadline, "task {uid} did not finish: {:?}", task.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends and waits for the task the answer names.
    pub async fn send_and_wait(&self, method: &str, path: &str, body: &Value) -> Value {
        let answer = self.send_json(method, path, body).await;
        assert_eq!(answer.status, 202, "{path}: {:?}", answer.body);
        self.wait_task(answer.body["taskUid"].as_u64().expect("taskUid")).await
    }

    /// Asks a node directly.
    pub async fn node_get(&self, index: usize, path: &str) -> (u16, Value) {
        let node = self.nodes[index].as_ref().expect("node running");
        let response = self
            .http
            .get(format!("{}{}", node.url(), path))
            .bearer_auth(NODE_KEY)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("node answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops node `index`.
    pub fn stop_node(&mut self, index: usize) {
        self.nodes[index] = None;
    }

    /// Stops node `index` and starts an empty one on its port, as a node restarted on an empty
    /// disk: Miroir's clients reach it at the same address.
    pub fn restart_node_empty(&mut self, index: usize) {
        let addr = self.nodes[index].as_ref().expect("node running").addr();
        self.nodes[index] = None;
        self.nodes[index] = Some(TestNode::start_at(addr, Some(NODE_KEY), Duration::ZERO));
    }

    /// Starts an empty node at `addr` as node `index` (stopped before): a node that comes back
    /// on an empty disk after being down.
    pub fn start_node_empty_at(&mut self, index: usize, addr: SocketAddr) {
        assert!(self.nodes[index].is_none(), "node {index} is still running");
        self.nodes[index] = Some(TestNode::start_at(addr, Some(NODE_KEY), Duration::ZERO));
    }

    /// Stops node `index` and waits (at most 10 s) until the prober says it is down.
    pub async fn stop_node_until_down(&mut self, index: usize) {
        self.stop_node(index);
        let node = self.node_ids[index].clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.state.health().state(&node) != miroir_http::health::HealthState::Down {
            assert!(Instant::now() < deadline, "the prober never took {node} down");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Where `make plugins` put the components.
pub fn plugins_dir() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { workspace.join(t) })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("plugins")
}

/// Loads the vector-search plugin with `config`'s section and installs its hooks in `state`,
/// as `miroir serve` does.
async fn install_vector_search(config: &Config, state: &AppState) {
    let component = plugins_dir().join("vector_search.wasm");
    assert!(component.is_file(), "{} is missing: run `make plugins` first", component.display());
    let spec = miroir_plugins::PluginSpec {
        config: serde_json::to_value(&config.vector_search).expect("section"),
        ..miroir_plugins::PluginSpec::new("vector_search", component)
    };
    let host = Arc::new(GatewayHost { state: state.clone() });
    let runtime = miroir_plugins::PluginRuntime::load(vec![spec], host).await.expect("load");
    assert!(state.install_hooks(Arc::new(runtime).hook_port()), "hooks installed once");
}

/// The gateway's searches as a plugin sees them (the `miroir` binary's host, without what the
/// vector-search plugin does not use).
struct GatewayHost {
    state: AppState,
}

async fn host_error(error: miroir_http::HttpError) -> miroir_plugins::HostCallError {
    use axum::response::IntoResponse;
    let response = error.into_response();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let code = body["code"].as_str().unwrap_or("internal");
    miroir_plugins::HostCallError::new(status, code, body["message"].as_str().unwrap_or_default())
}

fn no_kv() -> miroir_plugins::HostCallError {
    miroir_plugins::HostCallError::new(501, "not_implemented", "no key-value store in tests")
}

#[async_trait::async_trait]
impl miroir_plugins::PluginHost for GatewayHost {
    async fn search(
        &self,
        plugin: &str,
        index: &str,
        request: Value,
    ) -> Result<Value, miroir_plugins::HostCallError> {
        match miroir_http::search::search_value(&self.state, plugin, index, request).await {
            Ok(answer) => Ok(answer),
            Err(error) => Err(host_error(error).await),
        }
    }

    async fn scatter(
        &self,
        index: &str,
        request: Value,
    ) -> Result<Vec<miroir_plugins::ShardAnswer>, miroir_plugins::HostCallError> {
        match miroir_http::search::scatter_answers(&self.state, index, request).await {
            Ok(answers) => Ok(answers),
            Err(error) => Err(host_error(error).await),
        }
    }

    async fn kv_get(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<Vec<u8>>, miroir_plugins::HostCallError> {
        Err(no_kv())
    }

    async fn kv_put(
        &self,
        _: &str,
        _: &str,
        _: Vec<u8>,
    ) -> Result<(), miroir_plugins::HostCallError> {
        Err(no_kv())
    }

    async fn kv_delete(&self, _: &str, _: &str) -> Result<(), miroir_plugins::HostCallError> {
        Err(no_kv())
    }

    async fn kv_list_prefix(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Vec<String>, miroir_plugins::HostCallError> {
        Err(no_kv())
    }
}
