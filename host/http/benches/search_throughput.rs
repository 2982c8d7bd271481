//! Search throughput and latency through Miroir in front of ONE development node (S = 1),
//! against the same node asked directly: same client, same queries, same run.
//!
//! Run with `cargo bench -p miroir-http --bench search_throughput`. The node holds the 2,000
//! products with the products scenario's settings; the queries are the scenario's `search.*`
//! POST bodies, sent round-robin by `C` concurrent workers. Prints requests/s, p50 and p99 for
//! each side at each concurrency, and the ratios (targets: Miroir's throughput at least 0.9x the
//! node's, at most 0.3 ms added p50).
//!
//! The development node ranks every document for each query (tens of milliseconds), which
//! hides Miroir's part in the totals; so each query is also run alone, alternately on the node
//! and through Miroir, and the added latency is reported per query (median of the per-query
//! median differences, and the largest). The precise figure is Miroir's own cost without the
//! node's: a replay node answers each request it has seen from memory, asked directly and
//! through a second Miroir in front of it.
//!
//! `SEARCH_BENCH_REQUESTS` (default 300) sets the requests per measured round;
//! `SEARCH_BENCH_GATEWAY_ONLY=1` stops after the replay-node measurement.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{shared_dir, ClusterBuilder, NODE_KEY};
use serde_json::Value;

const MASTER_KEY: &str = "bench-master-key";
const CONCURRENCY: &[usize] = &[1, 8];
const ROUNDS: usize = 2;
/// Paired runs of each query at concurrency 1 (node, then Miroir, alternately).
const PAIRED_REPS: usize = 9;

/// One side of the comparison: where searches go and with which key.
#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    key: &'static str,
}

/// Throughput and latency of one measured run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let cluster = ClusterBuilder::new(1, 1, 1).shards(1).master_key(MASTER_KEY).start().await;
    load_products(&cluster).await;
    let node_url = cluster.nodes[0].as_ref().expect("the node runs").url();
    let miroir = Target { name: "miroir", url: cluster.url.clone(), key: MASTER_KEY };
    let node = Target { name: "node", url: node_url, key: NODE_KEY };
    let queries = Arc::new(scenario_queries());
    let requests: usize =
        std::env::var("SEARCH_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("an HTTP client");

    println!(
        "{} queries from the products scenario, {requests} requests per round, best of {ROUNDS}",
        queries.len()
    );
    for target in [&node, &miroir] {
        drive(&client, target, &queries, 8, queries.len() * 10).await; // warm-up
    }
    gateway_overhead(&client, &cluster, &node, &queries).await;
    if std::env::var_os("SEARCH_BENCH_GATEWAY_ONLY").is_some() {
        return;
    }
    paired(&client, &node, &miroir, &queries).await;
    for &concurrency in CONCURRENCY {
        let mut best_node: Option<Figures> = None;
        let mut best_miroir: Option<Figures> = None;
        // Alternate the sides so that any drift of the machine touches both alike.
        for _ in 0..ROUNDS {
            let n = drive(&client, &node, &queries, concurrency, requests).await;
            let m = drive(&client, &miroir, &queries, concurrency, requests).await;
            best_node = Some(best(best_node, n));
            best_miroir = Some(best(best_miroir, m));
        }
        let (n, m) = (best_node.expect("a round ran"), best_miroir.expect("a round ran"));
        for (name, f) in [(node.name, n), (miroir.name, m)] {
            println!(
                "c={concurrency:<2} {name:<6} {:>9.0} req/s  p50 {:>8.3} ms  p99 {:>8.3} ms",
                f.per_second,
                ms(f.p50),
                ms(f.p99)
            );
        }
        println!(
            "c={concurrency:<2} ratio  throughput {:.3}x (target >= 0.9)  added p50 {:+.3} ms \
             (target <= 0.3)  added p99 {:+.3} ms",
            m.per_second / n.per_second,
            ms(m.p50) - ms(n.p50),
            ms(m.p99) - ms(n.p99)
        );
    }
}

/// Runs each query alone [`PAIRED_REPS`] times on each side, alternately, and prints the added
/// latency: the median over queries of (Miroir's median - the node's median), and the largest.
async fn paired(client: &reqwest::Client, node: &Target, miroir: &Target, queries: &[Vec<u8>]) {
    let (mut added, mut node_medians) = (Vec::new(), Vec::new());
    for body in queries {
        let (mut n, mut m) = (Vec::new(), Vec::new());
        for _ in 0..PAIRED_REPS {
            n.push(once(client, node, body).await);
            m.push(once(client, miroir, body).await);
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            ms(v[v.len() / 2])
        };
        let (n50, m50) = (median(&mut n), median(&mut m));
        node_medians.push(n50);
        added.push(m50 - n50);
    }
    for list in [&mut added, &mut node_medians] {
        list.sort_by(f64::total_cmp);
    }
    let mid = |v: &[f64]| v[v.len() / 2];
    println!(
        "paired, c=1: node p50 per query {:.3}..{:.3} ms (median {:.3})",
        node_medians[0],
        node_medians[node_medians.len() - 1],
        mid(&node_medians)
    );
    println!(
        "paired, c=1: added by Miroir per query: median {:+.3} ms, largest {:+.3} ms \
         (target <= 0.3; the node's own variance is in this figure)",
        mid(&added),
        added[added.len() - 1],
    );
}

/// Miroir's own cost, without the node's: a replay node answers every request it has seen
/// once from memory (it asks the real node the first time), so a search asked of it directly
/// and through a second Miroir in front of it differ only by what the gateway does. Prints the
/// median added latency over the queries.
async fn gateway_overhead(
    client: &reqwest::Client,
    cluster: &common::Cluster,
    node: &Target,
    queries: &[Vec<u8>],
) {
    let (replay, last_search) = replay_node(node.url.clone()).await;
    let mut config = cluster.config.clone();
    config.nodes[0].address = replay.clone();
    let (addr, _state, _server) = common::serve(&config, &cluster.store_dir).await;
    let miroir = Target { name: "miroir", url: format!("http://{addr}"), key: MASTER_KEY };
    let direct = Target { name: "replay", url: replay, key: NODE_KEY };
    let mut added = Vec::new();
    for body in queries {
        once(client, &miroir, body).await; // the replay node learns the node request
                                           // The direct side sends exactly what Miroir sent the node.
        let sent = last_search.lock().expect("replay lock").clone().expect("a search reached it");
        let (mut d, mut m) = (Vec::new(), Vec::new());
        for _ in 0..PAIRED_REPS * 3 {
            d.push(once(client, &direct, &sent).await);
            m.push(once(client, &miroir, body).await);
        }
        d.sort();
        m.sort();
        added.push(ms(m[m.len() / 2]) - ms(d[d.len() / 2]));
    }
    added.sort_by(f64::total_cmp);
    println!(
        "gateway alone (a replay node answering from memory), c=1: added per query median \
         {:+.3} ms, largest {:+.3} ms (target <= 0.3)",
        added[added.len() / 2],
        added[added.len() - 1]
    );
}

/// The body of the last search a replay node received.
type LastSearch = Arc<std::sync::Mutex<Option<Vec<u8>>>>;

/// A node that forwards each distinct request to `upstream` once and then answers it from
/// memory; returns its URL and the body of the last search it received.
async fn replay_node(upstream: String) -> (String, LastSearch) {
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{Method, StatusCode, Uri};
    use std::collections::HashMap;
    use std::sync::Mutex;

    type Seen = Arc<Mutex<HashMap<(String, String, Bytes), (u16, Bytes)>>>;
    async fn answer(
        State((seen, last, upstream)): State<(Seen, LastSearch, String)>,
        method: Method,
        uri: Uri,
        body: Bytes,
    ) -> (StatusCode, [(&'static str, &'static str); 1], Bytes) {
        if uri.path().ends_with("/search") {
            *last.lock().expect("replay lock") = Some(body.to_vec());
        }
        let key = (method.to_string(), uri.to_string(), body.clone());
        let known = seen.lock().expect("replay lock").get(&key).cloned();
        let (status, bytes) = match known {
            Some(found) => found,
            None => {
                let response = reqwest::Client::new()
                    .request(method, format!("{upstream}{uri}"))
                    .bearer_auth(NODE_KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("the node answers");
                let status = response.status().as_u16();
                let bytes = response.bytes().await.expect("a body");
                seen.lock().expect("replay lock").insert(key, (status, bytes.clone()));
                (status, bytes)
            }
        };
        let status = StatusCode::from_u16(status).expect("a status");
        (status, [("content-type", "application/json")], bytes)
    }
    let (seen, last): (Seen, LastSearch) = (Arc::default(), Arc::default());
    let app = axum::Router::new().fallback(answer).with_state((seen, Arc::clone(&last), upstream));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("replay node") });
    (url, last)
}

/// One search; its latency.
async fn once(client: &reqwest::Client, target: &Target, body: &[u8]) -> Duration {
    let sent = Instant::now();
    let response = client
        .post(format!("{}/indexes/products/search", target.url))
        .bearer_auth(target.key)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    let bytes = response.bytes().await.expect("a body");
    let elapsed = sent.elapsed();
    assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&bytes));
    elapsed
}

/// The round with the higher throughput (its latencies come with it).
fn best(so_far: Option<Figures>, new: Figures) -> Figures {
    match so_far {
        Some(old) if old.per_second >= new.per_second => old,
        _ => new,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Creates `products` through Miroir with the scenario's settings and adds the 2,000 products.
async fn load_products(cluster: &common::Cluster) {
    let steps = scenario();
    let settings = steps
        .iter()
        .find(|s| s["name"] == "settings.update")
        .map(|s| s["body"].clone())
        .expect("the scenario updates the settings");
    let created = cluster
        .send_and_wait(
            "POST",
            "/indexes",
            &serde_json::json!({"uid": "products", "primaryKey": "id"}),
        )
        .await;
    assert_eq!(created["status"], "succeeded", "{created}");
    let set = cluster.send_and_wait("PATCH", "/indexes/products/settings", &settings).await;
    assert_eq!(set["status"], "succeeded", "{set}");
    let added = cluster
        .send_and_wait("POST", "/indexes/products/documents", &Value::Array(common::products()))
        .await;
    assert_eq!(added["status"], "succeeded", "{added}");
}

fn scenario() -> Vec<Value> {
    let path = shared_dir().join("contract/scenarios/products.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("the scenario parses")
}

/// The bodies of the scenario's `search.*` POST searches on `products` that Meilisearch answered
/// with a 200 (from the real recording), serialized once.
fn scenario_queries() -> Vec<Vec<u8>> {
    let path = shared_dir().join("contract/recordings/products.jsonl");
    let recorded =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let answered: Vec<String> = recorded
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter(|r| r["status"] == 200)
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    scenario()
        .iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("search.") && answered.iter().any(|a| a == n))
                && s["method"] == "POST"
                && s["path"] == "/indexes/products/search"
        })
        .map(|s| serde_json::to_vec(&s["body"]).expect("a body"))
        .collect()
}

/// Sends `requests` searches to `target` from `concurrency` workers, each going round the
/// queries from its own starting point; every answer must be a 200.
async fn drive(
    client: &reqwest::Client,
    target: &Target,
    queries: &Arc<Vec<Vec<u8>>>,
    concurrency: usize,
    requests: usize,
) -> Figures {
    let per_worker = requests.div_ceil(concurrency);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (client, target, queries) = (client.clone(), target.clone(), Arc::clone(queries));
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_worker);
                for i in 0..per_worker {
                    latencies
                        .push(once(&client, &target, &queries[(w * 7 + i) % queries.len()]).await);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(per_worker * concurrency);
    for worker in workers {
        latencies.extend(worker.await.expect("a worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}
