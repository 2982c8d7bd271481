//! The shadow tee through `miroir serve`: every read (sample rate 1.0) is sent again to three
//! targets — a development node holding the same documents and settings, one holding other
//! documents and other ranking rules, and a port nobody listens on — and the comparisons show
//! tau = 1 and no one-sided hits for the first, tau < 1 and hits on one side only for the
//! second, errors for the third, while the client's answers stay what they would be.

use std::time::Duration;

use gateway::{free_port, json_of, nodes_section, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;

const KEY: &str = "shadow-master-key";
const NODE_KEY: &str = "shadow-node-key";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// Waits for a development node's task of a 202 `answer`.
fn wait_node_task(client: &reqwest::blocking::Client, node: &TestNode, answer: (u16, String)) {
    assert_eq!(answer.0, 202, "{}", answer.1);
    let uid = json_of(answer)["taskUid"].as_u64().expect("task uid");
    wait_for(Duration::from_secs(30), "a node task", || {
        let task =
            json_of(send(client, "GET", &format!("{}/tasks/{uid}", node.url()), NODE_KEY, None));
        assert_ne!(task["status"], "failed", "{task}");
        task["status"] == "succeeded"
    });
}

fn phones(ids: impl IntoIterator<Item = u64>) -> Value {
    Value::Array(
        ids.into_iter().map(|i| json!({"id": i, "title": "phone", "price": 10 + i})).collect(),
    )
}

/// Loads `docs` with `settings` straight into a development node.
fn load_node(client: &reqwest::blocking::Client, node: &TestNode, settings: Value, docs: Value) {
    let url = node.url();
    let answer = send(
        client,
        "POST",
        &format!("{url}/indexes"),
        NODE_KEY,
        Some(json!({"uid": "products", "primaryKey": "id"})),
    );
    wait_node_task(client, node, answer);
    let answer = send(
        client,
        "PATCH",
        &format!("{url}/indexes/products/settings"),
        NODE_KEY,
        Some(settings),
    );
    wait_node_task(client, node, answer);
    let answer =
        send(client, "POST", &format!("{url}/indexes/products/documents"), NODE_KEY, Some(docs));
    wait_node_task(client, node, answer);
}

fn ids(answer: &Value) -> Vec<u64> {
    answer["hits"].as_array().expect("hits").iter().map(|h| h["id"].as_u64().expect("id")).collect()
}

#[test]
fn shadow_comparisons_show_relevance_changes_and_leave_answers_unchanged() {
    let client = client();
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let same = TestNode::start(Some(NODE_KEY));
    let other = TestNode::start(Some(NODE_KEY));
    let sortable = json!({"sortableAttributes": ["price"]});
    load_node(&client, &same, sortable.clone(), phones(0..10));
    // Without document 0, with document 100, and a ranking rule reversing the price order
    // ahead of the requested sort.
    let reversed = json!({
        "sortableAttributes": ["price"],
        "rankingRules": ["price:desc", "words", "typo", "proximity", "attribute", "sort", "exactness"],
    });
    load_node(&client, &other, reversed, phones((1..10).chain([100])));
    let dead = format!("http://127.0.0.1:{}", free_port());

    let dir = tempfile::tempdir().expect("temp dir");
    let shadow = format!(
        "shadow:\n  enabled: true\n  sample_rate: 1.0\n  diff_buffer: 50\n  targets:\n\
         \x20   - {{ name: same, address: \"{}\", api_key_env: SHADOW_TARGET_KEY }}\n\
         \x20   - {{ name: other, address: \"{}\", api_key_env: SHADOW_TARGET_KEY }}\n\
         \x20   - {{ name: dead, address: \"{dead}\" }}\n",
        same.url(),
        other.url(),
    );
    let miroir = Gateway::start_whole_with_env(
        dir.path(),
        "miroir",
        KEY,
        NODE_KEY,
        &[("SHADOW_TARGET_KEY", NODE_KEY)],
        |port| {
            format!(
                "server: {{ bind: 127.0.0.1, port: {port} }}\ntask_store: {{ path: miroir.db }}\n\
                 metrics: {{ enabled: false }}\nshards: 4\n{shadow}{}",
                nodes_section(nodes.iter().map(TestNode::url))
            )
        },
    );
    let base = &miroir.base;
    let call = |method: &str, path: &str, body: Option<Value>| {
        send(&client, method, &format!("{base}{path}"), KEY, body)
    };
    wait_task(
        &client,
        base,
        KEY,
        call("POST", "/indexes", Some(json!({"uid": "products", "primaryKey": "id"}))),
    );
    wait_task(&client, base, KEY, call("PATCH", "/indexes/products/settings", Some(sortable)));
    wait_task(&client, base, KEY, call("POST", "/indexes/products/documents", Some(phones(0..10))));

    // The client's answers are Miroir's own, whatever the targets answer (one is dead).
    let search = json!({"q": "phone", "sort": ["price:asc"], "limit": 20});
    for _ in 0..3 {
        let answer = json_of(call("POST", "/indexes/products/search", Some(search.clone())));
        assert_eq!(ids(&answer), (0..10).collect::<Vec<_>>(), "{answer}");
        assert_eq!(answer["estimatedTotalHits"], 10, "{answer}");
    }
    let (status, doc) = call("GET", "/indexes/products/documents/3", None);
    assert_eq!(status, 200, "{doc}");

    let diffs = |query: &str| -> Vec<Value> {
        let (status, text) = call("GET", &format!("/_miroir/shadow/diff?{query}"), None);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<Value>(&text).expect("json")["results"]
            .as_array()
            .cloned()
            .expect("results")
    };
    let searches = |target: &str| -> Vec<Value> {
        diffs("index=products&limit=50")
            .into_iter()
            .filter(|d| d["target"] == target && d["path"] == "/indexes/products/search")
            .collect()
    };
    wait_for(Duration::from_secs(30), "three comparisons per target", || {
        ["same", "other", "dead"].iter().all(|t| searches(t).len() == 3)
    });

    for diff in searches("same") {
        assert_eq!(diff["identical"], true, "{diff}");
        assert_eq!(diff["kendallTau"], 1.0, "{diff}");
        assert_eq!(diff["onlyPrimary"], json!([]), "{diff}");
        assert_eq!(diff["onlyShadow"], json!([]), "{diff}");
        assert_eq!(diff["totalDelta"], 0, "{diff}");
    }
    for diff in searches("other") {
        assert_eq!(diff["identical"], false, "{diff}");
        let tau = diff["kendallTau"].as_f64().expect("tau");
        assert!(tau < 1.0, "{diff}");
        assert_eq!(diff["onlyPrimary"], json!(["0"]), "{diff}");
        assert_eq!(diff["onlyShadow"], json!(["100"]), "{diff}");
        assert_eq!(diff["common"], 9, "{diff}");
    }
    for diff in searches("dead") {
        assert_eq!(diff["identical"], false, "{diff}");
        assert_eq!(diff["errorSide"], "shadow", "{diff}");
        assert_eq!(diff["shadow"]["status"], 0, "{diff}");
    }
    // The document read is compared whole.
    wait_for(Duration::from_secs(30), "the document read's comparison", || {
        diffs("index=products")
            .iter()
            .any(|d| d["target"] == "same" && d["path"] == "/indexes/products/documents/3")
    });
    let read = diffs("index=products")
        .into_iter()
        .find(|d| d["target"] == "same" && d["path"] == "/indexes/products/documents/3")
        .expect("the read");
    assert_eq!(read["identical"], true, "{read}");

    // `differs=true` leaves out the identical ones; another index has none.
    assert!(diffs("differs=true").iter().all(|d| d["identical"] == false));
    assert!(!diffs("differs=true").is_empty());
    assert!(diffs("index=books").is_empty());
    // Writes are never shadowed.
    assert!(diffs("limit=1000").iter().all(
        |d| d["method"] != "POST" || d["path"].as_str().is_some_and(|p| p.ends_with("/search"))
    ));

    let (status, text) = call("GET", "/_miroir/shadow/summary", None);
    assert_eq!(status, 200, "{text}");
    let summary: Value = serde_json::from_str(&text).expect("json");
    let target = |name: &str| -> Value {
        summary["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["target"] == name)
            .cloned()
            .expect("target")
    };
    assert_eq!(target("same")["shareIdentical"], 1.0, "{summary}");
    assert_eq!(target("same")["meanKendallTau"], 1.0, "{summary}");
    assert!(target("other")["meanKendallTau"].as_f64().expect("tau") < 1.0, "{summary}");
    assert_eq!(target("dead")["errors"], target("dead")["compared"], "{summary}");
    assert!(target("same")["latencyDeltaMs"]["p50"].is_number(), "{summary}");
    assert_eq!(summary["dropped"], 0, "{summary}");

    let (status, text) = call("GET", "/_miroir/shadow/diff?differs=maybe", None);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("miroir_invalid_query"), "{text}");
}
