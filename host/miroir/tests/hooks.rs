//! Plugins' search and off-path hooks through `miroir serve` in front of development nodes:
//! `plan-search` and `merge-search` change what a search answers (the `diversify` example),
//! `after-response` and `on-write` are delivered off the client's path, a trapping or looping
//! hook fails only its own call, and every call shows in the metrics.

use std::time::{Duration, Instant};

use gateway::{nodes_section, plugins_dir, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;

const KEY: &str = "hooks-master-key";
const NODE_KEY: &str = "hooks-node-key";

struct Cluster {
    nodes: Vec<TestNode>,
    dir: tempfile::TempDir,
    _miroir: Gateway,
    base: String,
    client: reqwest::blocking::Client,
}

impl Cluster {
    /// Three development nodes, eight shards, and `miroir serve` with the `custom` plugins (YAML
    /// flow-mapping entries of `plugins.custom`).
    fn start(custom: &[String]) -> Self {
        Cluster::start_with(custom, "")
    }

    /// [`Cluster::start`] plus top-level configuration lines (`extra`).
    fn start_with(custom: &[String], extra: &str) -> Self {
        let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins_dir = plugins_dir("vector_search.wasm");
        let config = format!(
            "metrics: {{ enabled: false }}\nshards: 8\n{extra}\
             plugins: {{ dir: \"{}\", custom: [{}] }}\n{}",
            plugins_dir.display(),
            custom.join(", "),
            nodes_section(nodes.iter().map(TestNode::url)),
        );
        let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
        let base = miroir.base.clone();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Cluster { nodes, dir, _miroir: miroir, base, client }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = send(&self.client, method, &format!("{}{path}", self.base), KEY, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn write(&self, method: &str, path: &str, body: Value) {
        let answer = send(&self.client, method, &format!("{}{path}", self.base), KEY, Some(body));
        wait_task(&self.client, &self.base, KEY, answer);
    }

    /// `products`: 60 documents of brand `acme`, then one each of `bolt` and `zenith`.
    fn products(&self) {
        self.write("POST", "/indexes", json!({"uid": "products", "primaryKey": "id"}));
        let mut docs: Vec<Value> =
            (0..60).map(|i| json!({"id": i, "title": "phone", "brand": "acme"})).collect();
        docs.push(json!({"id": 60, "title": "phone", "brand": "bolt"}));
        docs.push(json!({"id": 61, "title": "phone", "brand": "zenith"}));
        self.write("POST", "/indexes/products/documents", Value::Array(docs));
    }

    /// The value of the metric sample starting with `prefix` (labels included).
    fn metric(&self, prefix: &str) -> Option<f64> {
        let text =
            send(&self.client, "GET", &format!("{}/_miroir/metrics", self.base), KEY, None).1;
        text.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|v| v.trim().parse().ok())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("miroir.log")).unwrap_or_default()
    }
}

fn plugin(name: &str, component: &str, extra: &str) -> String {
    let path = plugins_dir(component).join(component);
    format!("{{ name: {name}, component: \"{}\"{extra} }}", path.display())
}

fn brands(answer: &Value) -> Vec<String> {
    answer["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["brand"].as_str().expect("brand").to_owned())
        .collect()
}

#[test]
fn plan_and_merge_search_hooks_of_a_custom_plugin_change_results() {
    let cluster = Cluster::start(&[plugin(
        "diversify",
        "diversify.wasm",
        ", config: { field: brand, max_per_value: 1, over_fetch: 50 }",
    )]);
    cluster.products();

    // Sixty `acme` phones and one of each other brand: without the plugin the first three
    // hits would all be `acme`; through it, one per brand.
    let (status, answer) = cluster.call(
        "POST",
        "/indexes/products/search",
        Some(json!({"q": "phone", "limit": 3, "showRankingScore": true})),
    );
    assert_eq!(status, 200, "{answer}");
    let mut seen = brands(&answer);
    seen.sort();
    assert_eq!(seen, ["acme", "bolt", "zenith"], "{answer}");
    assert_eq!(answer["limit"], 3);
    assert_eq!(answer["estimatedTotalHits"], 62, "every shard's total, summed: {answer}");
    assert!(answer["hits"][0]["_rankingScore"].is_number(), "{answer}");
    assert!(answer["hits"][0].get("_miroir_shard").is_none(), "no bookkeeping: {answer}");

    // GET search goes through the same hooks.
    let (status, answer) = cluster.call("GET", "/indexes/products/search?q=phone&limit=2", None);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["hits"].as_array().map(Vec::len), Some(2), "{answer}");
    let got = brands(&answer);
    assert_ne!(got[0], got[1], "{answer}");

    // A node's refusal reads as one node's search error (not as the per-shard multi-search's).
    let (status, error) = cluster.call(
        "POST",
        "/indexes/products/search",
        Some(json!({"q": "phone", "filter": "brand = acme"})),
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "invalid_search_filter", "{error}");
    assert!(!error["message"].as_str().unwrap_or_default().starts_with("Inside"), "{error}");

    // The plugin's own metric and its calls, under its name.
    let dropped = cluster.metric("miroir_plugin_diversify_dropped_hits ").expect("own metric");
    assert!(dropped >= 59.0, "{dropped}");
    for hook in ["plan-search", "merge-search"] {
        let calls = cluster
            .metric(&format!("miroir_plugin_calls_total{{hook=\"{hook}\",plugin=\"diversify\"}} "))
            .unwrap_or_else(|| panic!("{hook} calls"));
        assert!(calls >= 2.0, "{hook}: {calls}");
    }
}

/// The vector-search plugin (first-party, loaded first) takes vector and hybrid searches and
/// declines keyword searches, which the next plugin with a search hook (`diversify`) then
/// takes; with `fusion: rrf` a hybrid search is answered by the plugin with
/// `X-Miroir-Over-Fetch`.
#[test]
fn a_declined_search_goes_to_the_next_plugin_and_vector_searches_to_the_vector_plugin() {
    let cluster = Cluster::start_with(
        &[plugin(
            "diversify",
            "diversify.wasm",
            ", config: { field: brand, max_per_value: 1, over_fetch: 50 }",
        )],
        "vector_search: { enabled: true, fusion: rrf, over_fetch_factor: 2 }\n",
    );
    cluster.products();
    let embedders = json!({"embedders": {"default": {"source": "userProvided", "dimensions": 2}}});
    cluster.write("PATCH", "/indexes/products/settings", embedders);
    let docs: Vec<Value> = (0..62)
        .map(|i| {
            let x = f64::from(i) / 62.0;
            json!({"id": i, "_vectors": {"default": [x, 1.0 - x]}})
        })
        .collect();
    cluster.write("PUT", "/indexes/products/documents", Value::Array(docs));

    // A keyword search: declined by vector-search, diversified by the next plugin.
    let (status, answer) =
        cluster.call("POST", "/indexes/products/search", Some(json!({"q": "phone", "limit": 3})));
    assert_eq!(status, 200, "{answer}");
    let mut seen = brands(&answer);
    seen.sort();
    assert_eq!(seen, ["acme", "bolt", "zenith"], "{answer}");

    // A vector search: taken by vector-search and merged by score, not diversified.
    let vector = json!({"vector": [1.0, 0.0], "hybrid": {"embedder": "default",
                        "semanticRatio": 1.0}, "limit": 3, "showRankingScore": true});
    let (status, answer) = cluster.call("POST", "/indexes/products/search", Some(vector));
    assert_eq!(status, 200, "{answer}");
    let ids: Vec<u64> = answer["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [61, 60, 59], "the most similar first, whatever their brand: {answer}");

    // A hybrid search with rank fusion: answered by the plugin, over-fetched.
    let hybrid = json!({"q": "phone", "vector": [1.0, 0.0], "limit": 4,
                        "hybrid": {"embedder": "default", "semanticRatio": 0.5}});
    let url = format!("{}/indexes/products/search", cluster.base);
    let response = cluster.client.post(&url).bearer_auth(KEY).json(&hybrid).send().expect("send");
    assert_eq!(response.status(), 200);
    let over_fetch = response.headers().get("x-miroir-over-fetch").cloned();
    let answer: Value = response.json().expect("JSON");
    assert_eq!(over_fetch.as_ref().and_then(|v| v.to_str().ok()), Some("2"), "{answer}");
    assert_eq!(answer["hits"].as_array().map(Vec::len), Some(4), "{answer}");
    assert_eq!(answer["limit"], 4);
    assert!(answer["semanticHitCount"].is_u64(), "{answer}");

    let calls = cluster
        .metric("miroir_plugin_calls_total{hook=\"plan-search\",plugin=\"vector_search\"} ")
        .expect("plan-search calls");
    assert!(calls >= 3.0, "plan-search: {calls}");
}

#[test]
fn after_response_and_on_write_are_delivered_off_the_clients_path() {
    let cluster = Cluster::start(&[plugin(
        "recorder",
        "test_hooks.wasm",
        ", deadline_ms: 10000, config: { hooks: [after-response, on-write], sleep_ms: 2000 }",
    )]);
    cluster.products();
    let events = || {
        let (_, events) = cluster.call("GET", "/_miroir/x/test/events", None);
        events.as_array().cloned().unwrap_or_default()
    };
    wait_for(Duration::from_secs(20), "the on-write event", || {
        events()
            .iter()
            .any(|e| e["hook"] == "on-write" && e["operation"] == "documentAdditionOrUpdate")
    });
    let write = events()
        .into_iter()
        .find(|e| e["hook"] == "on-write" && e["operation"] == "documentAdditionOrUpdate")
        .expect("on-write");
    assert_eq!(write["index"], "products");
    assert_eq!(write["primary_keys"].as_array().map(Vec::len), Some(62), "{write}");
    assert!(!write["shards"].as_array().expect("shards").is_empty(), "{write}");
    assert!(write["task_uid"].is_u64(), "{write}");

    // The hook busy-waits two seconds on searches; the client does not wait for it.
    let started = Instant::now();
    let (status, answer) =
        cluster.call("POST", "/indexes/products/search", Some(json!({"q": "phone"})));
    let took = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["estimatedTotalHits"], 62);
    assert!(took < Duration::from_secs(1), "the search waited for after-response: {took:?}");
    wait_for(Duration::from_secs(20), "the after-response event", || {
        events().iter().any(|e| {
            e["hook"] == "after-response"
                && e["path"] == "/indexes/products/search"
                && e["status"] == 200
        })
    });

    // A deletion by id is an on-write event too, with its keys.
    let answer = send(
        &cluster.client,
        "DELETE",
        &format!("{}/indexes/products/documents/7", cluster.base),
        KEY,
        None,
    );
    wait_task(&cluster.client, &cluster.base, KEY, answer);
    wait_for(Duration::from_secs(20), "the deletion event", || {
        events()
            .iter()
            .any(|e| e["operation"] == "documentDeletion" && e["primary_keys"] == json!(["7"]))
    });
    let seen = cluster.metric("miroir_plugin_recorder_after_response_seen ").expect("metric");
    assert!(seen >= 1.0, "{seen}");
}

#[test]
fn a_trapping_or_looping_search_hook_fails_only_its_own_call() {
    let cluster =
        Cluster::start(&[plugin("trapper", "test_misbehave.wasm", ", config: { search: trap }")]);
    cluster.products();
    for _ in 0..2 {
        let (status, answer) =
            cluster.call("POST", "/indexes/products/search", Some(json!({"q": "phone"})));
        assert_eq!(status, 502, "{answer}");
        assert_eq!(answer["code"], "miroir_plugin_failed", "{answer}");
        assert_eq!(answer["type"], "internal", "{answer}");
    }
    // The gateway and the plugin's other calls keep working.
    let (status, document) = cluster.call("GET", "/indexes/products/documents/60", None);
    assert_eq!((status, &document["brand"]), (200, &json!("bolt")), "{document}");
    let (status, ok) = cluster.call("GET", "/_miroir/x/bad/ok", None);
    assert_eq!(status, 200, "{ok}");
    let failures = cluster
        .metric("miroir_plugin_failures_total{hook=\"plan-search\",plugin=\"trapper\"} ")
        .expect("failures metric");
    assert_eq!(failures, 2.0);
    assert!(cluster.log().contains("trapper"), "the failure is logged");

    let looping = Cluster::start(&[plugin(
        "looper",
        "test_misbehave.wasm",
        ", deadline_ms: 200, config: { search: loop }",
    )]);
    looping.products();
    let started = Instant::now();
    let (status, answer) =
        looping.call("POST", "/indexes/products/search", Some(json!({"q": "phone"})));
    assert_eq!((status, &answer["code"]), (502, &json!("miroir_plugin_failed")), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped at its deadline");
    let (status, _) = looping.call("GET", "/indexes/products/documents/61", None);
    assert_eq!(status, 200);
    let failures = looping
        .metric("miroir_plugin_failures_total{hook=\"plan-search\",plugin=\"looper\"} ")
        .expect("failures metric");
    assert_eq!(failures, 1.0);
}

#[test]
fn the_scatter_import_answers_each_shard_with_its_node_status_time_and_failures() {
    let mut cluster =
        Cluster::start(&[plugin("recorder", "test_hooks.wasm", ", config: { hooks: [] }")]);
    cluster.products();
    let (status, shards) =
        cluster.call("GET", "/_miroir/x/test/scatter?index=products&q=phone", None);
    assert_eq!(status, 200, "{shards}");
    let shards = shards.as_array().expect("a list").clone();
    assert_eq!(shards.len(), 8, "one answer per shard");
    let mut total = 0;
    for (i, shard) in shards.iter().enumerate() {
        assert_eq!(shard["shard"], i as u64, "in shard order");
        assert_eq!(shard["status"], 200, "{shard}");
        assert!(shard["node"].as_str().is_some_and(|n| n.starts_with('n')), "{shard}");
        assert!(shard["took_us"].as_u64().is_some_and(|t| t > 0), "{shard}");
        total += shard["body"]["estimatedTotalHits"].as_u64().expect("a shard's own total");
    }
    assert_eq!(total, 62, "each shard's own hits, none counted twice");

    // A node gone: its shards are answered as failed (status 0, its id, an error body).
    drop(cluster.nodes.remove(2));
    let (status, shards) =
        cluster.call("GET", "/_miroir/x/test/scatter?index=products&q=phone", None);
    assert_eq!(status, 200, "{shards}");
    let shards = shards.as_array().expect("a list").clone();
    assert_eq!(shards.len(), 8);
    let failed: Vec<&Value> = shards.iter().filter(|s| s["status"] != 200).collect();
    assert!(!failed.is_empty(), "the stopped node held shards: {shards:?}");
    for shard in failed {
        assert_eq!(shard["status"], 0, "{shard}");
        assert_eq!(shard["node"], "n2", "{shard}");
        assert!(shard["body"]["message"].is_string(), "{shard}");
    }
}
