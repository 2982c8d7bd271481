//! `/multi-search` through the plugin against the native path, and the gateway's memory with and
//! without plugins, through real `miroir serve` processes in front of three development nodes.
//!
//! Run: `make plugins && cargo bench -p miroir --bench multi_search`
//! (`MULTI_SEARCH_ROUNDS=N` changes the number of measured rounds, default 400).
//!
//! - Latency: one round is one `POST /multi-search` holding 5 queries (through the plugin), and
//!   the native baseline is the same 5 queries as 5 `POST /indexes/{uid}/search` sent at once
//!   through the gateway (the same client, waiting for the last answer). The two alternate round
//!   by round in one run, so drift affects both alike. Figures: median and p90 per round.
//! - Memory: `VmRSS` of the `miroir serve` process after the same fixed warm-up (300 native
//!   searches), with every plugin disabled and with multi-search enabled (which also serves 300
//!   multi-searches); and whether the process runs the plugin epoch thread, which exists exactly
//!   when a wasmtime engine was created.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const KEY: &str = "bench-master-key";
const NODE_KEY: &str = "bench-node-key";
const INDEX: &str = "items";
const WARM_UP: usize = 300;

fn plugins_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("plugins");
    assert!(dir.join("multi_search.wasm").exists(), "run `make plugins` first");
    dir
}

struct Miroir(Child);

impl Drop for Miroir {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `miroir serve` in front of `nodes`, with `multi_search.enabled: enabled`.
fn serve(nodes: &[TestNode], dir: &std::path::Path, enabled: bool) -> (Miroir, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = format!(
        "server: {{ bind: 127.0.0.1, port: {port} }}\nmetrics: {{ enabled: false }}\nshards: 8\n\
         task_store: {{ path: miroir.db }}\nmulti_search: {{ enabled: {enabled} }}\n\
         plugins: {{ dir: \"{}\" }}\nnodes:\n",
        plugins_dir().display()
    );
    for (i, node) in nodes.iter().enumerate() {
        config.push_str(&format!(
            "  - {{ id: n{i}, address: \"{}\", replica_group: g }}\n",
            node.url()
        ));
    }
    let path = dir.join(format!("miroir-{enabled}.yaml"));
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_miroir"))
        .args(["serve", "--config"])
        .arg(&path)
        .current_dir(dir)
        .env("MIROIR_MASTER_KEY", KEY)
        .env("MIROIR_NODE_MASTER_KEY", NODE_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start miroir");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::blocking::get(format!("{base}/health")).is_err() {
        assert!(Instant::now() < deadline, "miroir did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Miroir(child), base)
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = client.post(url).bearer_auth(KEY).json(body).send().await.expect("answer");
    assert!(response.status().is_success(), "{url}: {}", response.status());
    response.json().await.expect("json")
}

async fn wait_task(client: &reqwest::Client, base: &str, answer: &Value) {
    let uid = answer["taskUid"].as_u64().expect("a task");
    loop {
        let task: Value = client
            .get(format!("{base}/tasks/{uid}"))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match task["status"].as_str() {
            Some("succeeded") => return,
            Some("failed" | "canceled") => panic!("{task}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn queries() -> Vec<Value> {
    vec![
        json!({"q": "alpha", "limit": 10}),
        json!({"q": "bravo delta", "limit": 10}),
        json!({"q": "charlie", "limit": 20, "offset": 5}),
        json!({"q": "echo", "limit": 10, "filter": "kind = alpha"}),
        json!({"q": "", "limit": 10, "sort": ["price:asc"]}),
    ]
}

async fn native_round(client: &reqwest::Client, base: &str) {
    let url = format!("{base}/indexes/{INDEX}/search");
    let calls: Vec<_> = queries()
        .into_iter()
        .map(|q| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { post(&client, &url, &q).await })
        })
        .collect();
    for call in calls {
        call.await.expect("a search");
    }
}

async fn plugin_round(client: &reqwest::Client, base: &str) {
    let batch: Vec<Value> = queries()
        .into_iter()
        .map(|mut q| {
            q["indexUid"] = json!(INDEX);
            q
        })
        .collect();
    post(client, &format!("{base}/multi-search"), &json!({ "queries": batch })).await;
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Whether the process runs the plugin runtime's epoch thread (`miroir-plugin-epoch`).
fn has_epoch_thread(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks").flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            // Thread names are cut to 15 bytes in `comm`: "miroir-plugin-e".
            .is_ok_and(|comm| comm.trim() == &"miroir-plugin-epoch"[..15])
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn load(client: &reqwest::Client, base: &str) {
    let created =
        post(client, &format!("{base}/indexes"), &json!({"uid": INDEX, "primaryKey": "id"})).await;
    wait_task(client, base, &created).await;
    let settings = json!({"filterableAttributes": ["kind"], "sortableAttributes": ["price"]});
    let patched: Value = client
        .patch(format!("{base}/indexes/{INDEX}/settings"))
        .bearer_auth(KEY)
        .json(&settings)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    wait_task(client, base, &patched).await;
    let words = ["alpha", "bravo", "charlie", "delta", "echo"];
    let docs: Vec<Value> = (0..2000)
        .map(|i| {
            json!({"id": i, "title": format!("{} {} item {i}", words[i % 5], words[(i / 5) % 5]),
                   "kind": words[i % 3], "price": (i * 37) % 1001})
        })
        .collect();
    let added = post(client, &format!("{base}/indexes/{INDEX}/documents"), &json!(docs)).await;
    wait_task(client, base, &added).await;
}

fn main() {
    let rounds: usize =
        std::env::var("MULTI_SEARCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();

    // Every plugin disabled. The index is created through this gateway; the next one reads it
    // from the same task store.
    let (disabled, base) = serve(&nodes, dir.path(), false);
    runtime.block_on(async {
        load(&client, &base).await;
        for _ in 0..WARM_UP / 5 {
            native_round(&client, &base).await;
        }
    });
    let disabled_rss = vm_rss_kib(disabled.0.id());
    let disabled_epoch = has_epoch_thread(disabled.0.id());
    drop(disabled);

    // Multi-search enabled: the same warm-up, plus multi-searches.
    let (enabled, base) = serve(&nodes, dir.path(), true);
    runtime.block_on(async {
        for _ in 0..WARM_UP / 5 {
            native_round(&client, &base).await;
        }
        for _ in 0..WARM_UP {
            plugin_round(&client, &base).await;
        }
    });
    let enabled_rss = vm_rss_kib(enabled.0.id());
    let enabled_epoch = has_epoch_thread(enabled.0.id());

    // Latency, alternating round by round.
    let mut plugin = Vec::with_capacity(rounds);
    let mut native = Vec::with_capacity(rounds);
    runtime.block_on(async {
        for _ in 0..rounds {
            let started = Instant::now();
            plugin_round(&client, &base).await;
            plugin.push(started.elapsed());
            let started = Instant::now();
            native_round(&client, &base).await;
            native.push(started.elapsed());
        }
    });
    drop(enabled);
    plugin.sort();
    native.sort();
    let (pm, nm) = (percentile(&plugin, 0.5), percentile(&native, 0.5));
    println!("multi-search, 5 queries, 3 nodes, 8 shards, {rounds} rounds each, alternating:");
    println!(
        "  plugin  POST /multi-search             median {:>8.1?}  p90 {:>8.1?}",
        pm,
        percentile(&plugin, 0.9)
    );
    println!(
        "  native  5 x POST /indexes/_/search     median {:>8.1?}  p90 {:>8.1?}",
        nm,
        percentile(&native, 0.9)
    );
    println!(
        "  plugin / native (median): {:.3}  (target <= 1.10)",
        pm.as_secs_f64() / nm.as_secs_f64()
    );
    println!("gateway VmRSS after the warm-up:");
    println!("  every plugin disabled  {disabled_rss:>7} KiB  (epoch thread: {disabled_epoch})");
    println!("  multi-search enabled   {enabled_rss:>7} KiB  (epoch thread: {enabled_epoch})");
    println!(
        "  difference             {:>7} KiB  (target <= 5120 KiB per plugin)",
        enabled_rss as i64 - disabled_rss as i64
    );
}
