//! Hybrid search through the vector-search plugin against the native path it replaced, and
//! keyword search with no plugin against keyword search with the plugin loaded (declining it),
//! measured in one run over the same three development nodes.
//!
//! Run: `make plugins && cargo bench -p miroir-http --bench hybrid_plugin`
//! (`HYBRID_BENCH_ROUNDS`, default 200, sets the paired rounds).
//!
//! - **plugin**: `search_value` on a gateway whose hook port is the vector-search plugin: the
//!   plugin's `plan-search` decides keyword first (its `search` import runs the keyword half over
//!   the whole index) and answers, or hands the whole search back to the host.
//! - **native**: the algorithm of the removed `host/http/src/hybrid.rs` run natively, in this
//!   file, on a gateway over the same nodes and store without any plugin: the keyword half
//!   through `search_value`, the same decision, then the whole search when needed. (The removed
//!   code merged the keyword scatter twice; this baseline merges it once, so it is, if anything,
//!   faster than the code it stands for.)
//! - **keyword, no plugin / plugin loaded**: keyword searches over HTTP to a gateway with every
//!   plugin disabled, and to the gateway with the vector-search plugin (whose `plan-search`
//!   declines them).
//!
//! Each round sends every query once on each side, alternating which side goes first, so both
//! see the same machine load; the ratios compare medians.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{shared_dir, ClusterBuilder};
use miroir_http::AppState;
use serde_json::{json, Value};

const KEY: &str = "bench-master-key";
const INDEX: &str = "vectors";
const GOOD_ENOUGH: f64 = 0.45;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let rounds: usize =
        std::env::var("HYBRID_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let cluster = ClusterBuilder::new(1, 3, 1).master_key(KEY).vector_search().start().await;
    load(&cluster).await;
    // The same nodes and store, without the plugin: the native baseline and the keyword search
    // with every plugin disabled.
    let (_, native, _server) =
        common::serve_with_plugins(&cluster.config, &cluster.store_dir, false).await;
    let mut plain_config = cluster.config.clone();
    plain_config.vector_search.enabled = false;
    let (plain_addr, plain, _plain_server) =
        common::serve_with_plugins(&plain_config, &cluster.store_dir, false).await;
    assert!(!plain.hooks().hooks().searches() && !native.hooks().hooks().searches());
    assert!(cluster.state.hooks().hooks().searches());

    let vector = json!([0.5, -0.2, 0.1, 0.9, -0.7, 0.3, 0.0, -0.4]);
    let hybrid = |q: &str, ratio: f64| {
        json!({"q": q, "vector": vector, "showRankingScore": true,
               "hybrid": {"embedder": "default", "semanticRatio": ratio}})
    };
    let queries = [
        ("hybrid, keyword hits good enough", hybrid("alpha gamma", 0.5)),
        ("hybrid, semantic half needed", hybrid("alpha gamma", 0.9)),
        ("vector only", hybrid("", 1.0)),
    ];
    for (label, query) in &queries {
        let through_plugin =
            miroir_http::search::search_value(&cluster.state, "bench", INDEX, query.clone())
                .await
                .expect("plugin search");
        let baseline = native_search(&native, query).await;
        assert_eq!(hits(&through_plugin), hits(&baseline), "{label}: the same answer");
    }
    println!("{rounds} paired rounds over 1x3 nodes (RF 1), vectors scenario (400 documents)");
    println!("{:<36} {:>12} {:>12} {:>8}", "query", "plugin p50", "native p50", "ratio");
    for (label, query) in &queries {
        let (mut plugin_times, mut native_times) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let plugin_first = round % 2 == 0;
            for side in [plugin_first, !plugin_first] {
                let started = Instant::now();
                if side {
                    let state = &cluster.state;
                    miroir_http::search::search_value(state, "bench", INDEX, query.clone())
                        .await
                        .expect("plugin search");
                    plugin_times.push(started.elapsed());
                } else {
                    native_search(&native, query).await;
                    native_times.push(started.elapsed());
                }
            }
        }
        let (p, n) = (median(&mut plugin_times), median(&mut native_times));
        println!("{label:<36} {p:>12.2?} {n:>12.2?} {:>7.3}x", ratio(p, n));
    }

    let client = reqwest::Client::new();
    let keyword = json!({"q": "alpha", "limit": 10});
    let (mut loaded, mut disabled) = (Vec::new(), Vec::new());
    let plain_url = format!("http://{plain_addr}");
    for round in 0..rounds {
        let loaded_first = round % 2 == 0;
        for side in [loaded_first, !loaded_first] {
            let url = if side { &cluster.url } else { &plain_url };
            let started = Instant::now();
            let response = client
                .post(format!("{url}/indexes/{INDEX}/search"))
                .bearer_auth(KEY)
                .json(&keyword)
                .send()
                .await
                .expect("search");
            assert!(response.status().is_success());
            response.bytes().await.expect("body");
            if side { &mut loaded } else { &mut disabled }.push(started.elapsed());
        }
    }
    let (l, d) = (median(&mut loaded), median(&mut disabled));
    println!(
        "keyword search over HTTP: plugin loaded (declines) p50 {l:.2?}, no plugin p50 {d:.2?}: \
         {:.3}x",
        ratio(l, d)
    );
}

/// The removed native hybrid path: keyword half first over the whole index, decided like one
/// node, else the whole search.
async fn native_search(state: &AppState, request: &Value) -> Value {
    if let Some(ratio) = keyword_first_ratio(request) {
        let mut keyword = request.clone();
        keyword["hybrid"]["semanticRatio"] = json!(0.0);
        keyword["showRankingScore"] = json!(true);
        let merged = miroir_http::search::search_value(state, "bench", INDEX, keyword)
            .await
            .expect("keyword half");
        if keyword_good_enough(request, &merged, ratio) {
            return merged;
        }
    }
    miroir_http::search::search_value(state, "bench", INDEX, request.clone()).await.expect("search")
}

fn keyword_first_ratio(request: &Value) -> Option<f64> {
    request.get("vector").filter(|v| v.is_array())?;
    request.get("q").and_then(Value::as_str).filter(|q| !q.trim().is_empty())?;
    let ratio = request["hybrid"]["semanticRatio"].as_f64().unwrap_or(0.5);
    (ratio > 0.0 && ratio < 1.0).then_some(ratio)
}

fn keyword_good_enough(client: &Value, merged: &Value, ratio: f64) -> bool {
    let end = client["offset"].as_u64().unwrap_or(0) + client["limit"].as_u64().unwrap_or(20);
    let total = merged["estimatedTotalHits"].as_u64().unwrap_or(0);
    let hits = merged["hits"].as_array().map_or(&[][..], Vec::as_slice);
    total >= end
        && hits
            .iter()
            .all(|h| h["_rankingScore"].as_f64().is_some_and(|s| s * (1.0 - ratio) >= GOOD_ENOUGH))
}

fn hits(answer: &Value) -> Vec<Value> {
    answer["hits"].as_array().cloned().unwrap_or_default().iter().map(|h| h["id"].clone()).collect()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// The vectors scenario's index: its embedder settings and 400 documents.
async fn load(cluster: &common::Cluster) {
    let scenario: Value = serde_json::from_slice(
        &std::fs::read(shared_dir().join("contract/scenarios/vectors.json")).expect("scenario"),
    )
    .expect("JSON");
    let settings = scenario
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == "settings.embedders")
        .expect("the embedder step")["body"]
        .clone();
    let documents: Value = serde_json::from_slice(
        &std::fs::read(shared_dir().join("datasets/vectors-400.json")).expect("dataset"),
    )
    .expect("JSON");
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": INDEX, "primaryKey": "id"})).await;
    let task = cluster.send_and_wait("PATCH", "/indexes/vectors/settings", &settings).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let task = cluster.send_and_wait("POST", "/indexes/vectors/documents", &documents).await;
    assert_eq!(task["status"], "succeeded", "{task}");
}
