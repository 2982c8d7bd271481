//! The vectors scenario (user-provided embeddings: vector, filtered vector, hybrid and
//! keyword-only searches, `similar`) through Miroir answers like one node.
//!
//! The scenario is recorded once against ONE development node holding everything, then replayed
//! through Miroir over several nodes with `contract.py check` in every compare mode, `ranked`
//! included: zero failures. Against the recording of a real Meilisearch, Miroir must fail no
//! step the development node itself passes. Multi-search steps (`multi.`) are served by the
//! multi-search plugin, which this in-process gateway does not load; they are checked through
//! `miroir serve` elsewhere.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{contract_check, contract_record, shared_dir, ClusterBuilder};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const KEY: &str = "vectors-master-key";

/// Steps left out, by name prefix (see the module documentation).
const NOT_SERVED_HERE: &str = "multi.";

/// Where this test process keeps its recordings.
fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("search-vectors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("recording dir");
    dir
}

/// Keeps the steps served here from the recording `from`, written to `to` with `body_file`
/// made absolute so the copy stands anywhere.
fn served_steps(from: &Path, to: &Path) {
    let base = from.parent().expect("a recording directory");
    let text = std::fs::read_to_string(from).expect("recording readable");
    let mut kept = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut step: Value = serde_json::from_str(line).expect("JSON line");
        if step["name"].as_str().unwrap_or_default().starts_with(NOT_SERVED_HERE) {
            continue;
        }
        if let Some(file) = step["step"]["body_file"].as_str() {
            let absolute = base.join(file).canonicalize().expect("the body file exists");
            step["step"]["body_file"] = Value::from(absolute.to_string_lossy().into_owned());
        }
        kept.push(step.to_string());
    }
    std::fs::write(to, kept.join("\n") + "\n").expect("write the recording");
}

/// The vectors scenario recorded against one development node, once per test process.
fn single_node_recording() -> &'static PathBuf {
    static RECORDING: OnceLock<PathBuf> = OnceLock::new();
    RECORDING.get_or_init(|| {
        let dir = work_dir();
        let node = TestNode::start(Some(KEY));
        let raw = dir.join("vectors.raw.jsonl");
        let input = shared_dir().join("contract/scenarios/vectors.json");
        let output = contract_record(&node.url(), KEY, &input, &raw);
        assert!(
            output.status.success(),
            "recording vectors failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let served = dir.join("vectors.jsonl");
        served_steps(&raw, &served);
        served
    })
}

/// What `contract.py check` said: the names of the failing steps and the summary line.
struct Check {
    failed: BTreeSet<String>,
    summary: String,
    output: String,
}

async fn check(url: String, recording: PathBuf) -> Check {
    let output = tokio::task::spawn_blocking(move || contract_check(&url, KEY, &recording))
        .await
        .expect("contract thread");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let failed = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split(':').next().unwrap_or_default().to_owned())
        .collect();
    let summary = stdout.lines().last().unwrap_or_default().to_owned();
    let output = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    Check { failed, summary, output }
}

/// Replays the single-node recording through Miroir over `groups` x `per_group` nodes at `rf`.
async fn equals_one_node(groups: usize, per_group: usize, rf: u32) {
    let recording = tokio::task::spawn_blocking(single_node_recording).await.expect("record");
    let cluster =
        ClusterBuilder::new(groups, per_group, rf).master_key(KEY).vector_search().start().await;
    let result = check(cluster.url.clone(), recording.clone()).await;
    assert!(
        result.failed.is_empty() && result.summary.ends_with(" 0 failed"),
        "vectors over {groups}x{per_group} RF {rf} differs from one node:\n{}",
        result.output
    );
    println!("vectors over {groups}x{per_group} RF {rf}: {}", result.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_on_one_node_behind_miroir_equal_one_node() {
    equals_one_node(1, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_over_three_nodes_rf1_equal_one_node() {
    equals_one_node(1, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_over_six_nodes_rf2_equal_one_node() {
    equals_one_node(1, 6, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_over_two_groups_of_three_rf2_equal_one_node() {
    equals_one_node(2, 3, 2).await;
}

/// Against the real Meilisearch recording, Miroir over three nodes fails no step the
/// development node itself passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_against_the_real_recording_pass_what_one_node_passes() {
    let dir = work_dir();
    let real = dir.join("vectors.real.jsonl");
    served_steps(&shared_dir().join("contract/recordings/vectors.jsonl"), &real);
    let node = TestNode::start(Some(KEY));
    let on_node = check(node.url(), real.clone()).await;
    let cluster = ClusterBuilder::new(1, 3, 1).master_key(KEY).vector_search().start().await;
    let through_miroir = check(cluster.url.clone(), real).await;
    let worse: Vec<&String> = through_miroir.failed.difference(&on_node.failed).collect();
    assert!(
        worse.is_empty(),
        "steps the development node passes but Miroir fails: {worse:?}\n{}",
        through_miroir.output
    );
    println!(
        "real vectors recording: development node {}; Miroir over 1x3 {}",
        on_node.summary, through_miroir.summary
    );
}

/// Hybrid searches on both sides of the keyword-first decision (keyword hits good enough, or
/// the semantic half needed), deeper pages and the GET form of `similar`, added to the
/// scenario's setup steps: recorded on one node, checked through Miroir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_decisions_and_similar_forms_equal_one_node() {
    let scenario_path = shared_dir().join("contract/scenarios/vectors.json");
    let scenario: Value =
        serde_json::from_slice(&std::fs::read(&scenario_path).expect("scenario")).expect("JSON");
    let base = scenario_path.parent().expect("scenario dir");
    let mut steps: Vec<Value> = scenario
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s.get("method").is_none_or(|m| m != "POST" || s["wait"] == true))
        .cloned()
        .collect();
    for step in &mut steps {
        if let Some(file) = step["body_file"].as_str() {
            let absolute = base.join(file).canonicalize().expect("the body file exists");
            step["body_file"] = Value::from(absolute.to_string_lossy().into_owned());
        }
    }
    let vector = json!([0.5, -0.2, 0.1, 0.9, -0.7, 0.3, 0.0, -0.4]);
    let hybrid = |name: &str, body: Value| {
        let mut body = body;
        body["vector"] = vector.clone();
        body["showRankingScore"] = json!(true);
        json!({"name": name, "method": "POST", "path": "/indexes/vectors/search", "body": body,
               "compare": "ranked"})
    };
    let ratio = |r: f64| json!({"embedder": "default", "semanticRatio": r});
    steps.extend([
        hybrid("hybrid.semantic-heavy", json!({"q": "alpha gamma", "hybrid": ratio(0.9)})),
        hybrid("hybrid.keyword-enough", json!({"q": "alpha gamma", "hybrid": ratio(0.5)})),
        hybrid("hybrid.deep-page", json!({"q": "omega", "hybrid": ratio(0.5), "offset": 15,
                                          "limit": 10})),
        hybrid("hybrid.filtered", json!({"q": "beta", "hybrid": ratio(0.3),
                                         "filter": "group = 1", "limit": 30})),
        hybrid("hybrid.paged", json!({"q": "alpha", "hybrid": ratio(0.5), "page": 2,
                                      "hitsPerPage": 7})),
        json!({"name": "similar.get", "method": "GET", "compare": "ranked",
               "path": "/indexes/vectors/similar?id=19&embedder=default&limit=5&showRankingScore=true"}),
        json!({"name": "similar.threshold", "method": "POST", "path": "/indexes/vectors/similar",
               "compare": "ranked",
               "body": {"id": 3, "embedder": "default", "rankingScoreThreshold": 0.9,
                        "showRankingScore": true, "limit": 100}}),
    ]);
    let dir = work_dir();
    let scenario = dir.join("hybrid.json");
    std::fs::write(&scenario, Value::from(steps).to_string()).expect("write the scenario");
    let recording = dir.join("hybrid.jsonl");
    let node = TestNode::start(Some(KEY));
    let (url, out, input) = (node.url(), recording.clone(), scenario.clone());
    let output = tokio::task::spawn_blocking(move || contract_record(&url, KEY, &input, &out))
        .await
        .expect("record thread");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    // Both sides of the decision are exercised.
    let recorded = std::fs::read_to_string(&recording).expect("recording");
    let semantic_hits = |name: &str| {
        recorded
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
            .find(|l| l["name"] == name)
            .and_then(|l| l["body"]["semanticHitCount"].as_u64())
    };
    assert_eq!(semantic_hits("hybrid.keyword-enough"), Some(0), "keyword hits good enough");
    assert!(semantic_hits("hybrid.semantic-heavy").unwrap_or(0) > 0, "semantic half needed");

    for (groups, per_group, rf) in [(1, 3, 1), (2, 3, 2)] {
        let cluster = ClusterBuilder::new(groups, per_group, rf)
            .master_key(KEY)
            .vector_search()
            .start()
            .await;
        let result = check(cluster.url.clone(), recording.clone()).await;
        assert!(
            result.failed.is_empty() && result.summary.ends_with(" 0 failed"),
            "hybrid over {groups}x{per_group} RF {rf} differs from one node:\n{}",
            result.output
        );
        println!("hybrid and similar over {groups}x{per_group} RF {rf}: {}", result.summary);
    }
}

/// With `vector_search.enabled: false` nothing of the plugin is loaded, and a vector or hybrid
/// search (and `similar`) answers an error naming the setting; keyword searches are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_searches_name_the_flag_when_the_feature_is_off() {
    let cluster = ClusterBuilder::new(1, 2, 1).master_key(KEY).start().await;
    assert!(!cluster.state.hooks().hooks().searches(), "no plugin hook without the feature");
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "v", "primaryKey": "id"})).await;
    let refused = [
        (
            "POST",
            "/indexes/v/search",
            Some(json!({"q": "a", "hybrid": {"embedder": "default",
                                                   "semanticRatio": 0.5}})),
        ),
        ("POST", "/indexes/v/search", Some(json!({"vector": [0.1, 0.2]}))),
        ("GET", "/indexes/v/search?q=a&vector=0.1,0.2", None),
        ("POST", "/indexes/v/similar", Some(json!({"id": 1, "embedder": "default"}))),
        ("GET", "/indexes/v/similar?id=1&embedder=default", None),
    ];
    for (method, path, body) in refused {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let answer = cluster.call(method, path, body, &[]).await;
        assert_eq!(answer.status, 400, "{method} {path}: {}", answer.body);
        assert_eq!(answer.body["code"], "miroir_feature_not_enabled", "{}", answer.body);
        assert_eq!(answer.body["type"], "invalid_request");
        assert_eq!(
            answer.body["link"],
            "https://docs.meilisearch.com/errors#miroir_feature_not_enabled"
        );
        let message = answer.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("vector_search.enabled"), "{message}");
    }
    let keyword = cluster.send_json("POST", "/indexes/v/search", &json!({"q": "a"})).await;
    assert_eq!(keyword.status, 200, "{}", keyword.body);
    let nulls = json!({"q": "a", "vector": null, "hybrid": null});
    assert_eq!(cluster.send_json("POST", "/indexes/v/search", &nulls).await.status, 200);
    // A federated multi-search (the multi-search plugin's `federated-search` import) too, naming
    // the query.
    let federated = json!({"federation": {}, "queries": [
        {"indexUid": "v", "q": "a"},
        {"indexUid": "v", "vector": [0.1, 0.2]},
    ]});
    let error = miroir_http::federated::federated_search(&cluster.state, &federated)
        .await
        .expect_err("a vector query while the feature is off");
    let response = axum::response::IntoResponse::into_response(error);
    assert_eq!(response.status(), 400);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["code"], "miroir_feature_not_enabled", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Inside `.queries[1]`"), "{message}");
    assert!(message.contains("vector_search.enabled"), "{message}");
}
