//! Renaming an index (`PATCH /indexes/{uid}` with a new `uid`) through Miroir over three
//! development nodes answers what one node answers: the task, the index under its new name with
//! its documents and settings, the old name gone, and a rename onto a taken name failing.

mod common;

use common::{call_json, ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

/// Sends a write and waits for its task; answers the finished task.
async fn write(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let (status, answer) = call_json(http, base, key, method, path, Some(body)).await;
    assert_eq!(status, 202, "{method} {path}: {answer}");
    let uid = answer["taskUid"].as_u64().expect("task uid");
    for _ in 0..1000 {
        let (_, task) = call_json(http, base, key, "GET", &format!("/tasks/{uid}"), None).await;
        if matches!(task["status"].as_str(), Some("succeeded" | "failed")) {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("task {uid} did not finish");
}

/// Everything the test looks at, for one server.
async fn scenario(base: &str, key: &str) -> Value {
    let http = reqwest::Client::new();
    let mut out = serde_json::Map::new();
    write(&http, base, key, "POST", "/indexes", json!({"uid": "old", "primaryKey": "id"})).await;
    write(
        &http,
        base,
        key,
        "PATCH",
        "/indexes/old/settings",
        json!({"filterableAttributes": ["kind"]}),
    )
    .await;
    let docs: Vec<Value> = (1..=30)
        .map(|i| json!({"id": i, "kind": if i % 2 == 0 { "even" } else { "odd" }}))
        .collect();
    write(&http, base, key, "POST", "/indexes/old/documents", json!(docs)).await;
    write(&http, base, key, "POST", "/indexes", json!({"uid": "taken"})).await;

    let task = write(&http, base, key, "PATCH", "/indexes/old", json!({"uid": "new"})).await;
    out.insert(
        "rename.task".into(),
        json!([task["type"], task["status"], task["indexUid"], task["details"]]),
    );
    let (status, index) = call_json(&http, base, key, "GET", "/indexes/new", None).await;
    out.insert("new.get".into(), json!([status, index["uid"], index["primaryKey"]]));
    let (status, gone) = call_json(&http, base, key, "GET", "/indexes/old", None).await;
    out.insert("old.get".into(), json!([status, gone["code"]]));
    let (status, found) = call_json(
        &http,
        base,
        key,
        "POST",
        "/indexes/new/search",
        Some(json!({"filter": "kind = even", "limit": 100})),
    )
    .await;
    out.insert("new.search".into(), json!([status, found["estimatedTotalHits"]]));
    let (_, settings) =
        call_json(&http, base, key, "GET", "/indexes/new/settings/filterable-attributes", None)
            .await;
    out.insert("new.settings".into(), settings);
    let (status, listing) = call_json(&http, base, key, "GET", "/indexes", None).await;
    let names: Vec<Value> =
        listing["results"].as_array().expect("results").iter().map(|i| i["uid"].clone()).collect();
    out.insert("indexes".into(), json!([status, names]));
    let added = write(
        &http,
        base,
        key,
        "POST",
        "/indexes/new/documents",
        json!([{"id": 31, "kind": "odd"}]),
    )
    .await;
    out.insert("new.write".into(), json!([added["status"], added["details"]]));

    let taken = write(&http, base, key, "PATCH", "/indexes/new", json!({"uid": "taken"})).await;
    out.insert("taken.task".into(), json!([taken["status"], taken["error"]["code"]]));
    let (status, _) = call_json(&http, base, key, "GET", "/indexes/new", None).await;
    out.insert("taken.new-still-there".into(), json!(status));

    // A swap with `rename: true` renames too.
    let swap = json!([{"indexes": ["new", "swapped"], "rename": true}]);
    let task = write(&http, base, key, "POST", "/swap-indexes", swap).await;
    out.insert("swap.task".into(), json!([task["type"], task["status"], task["details"]]));
    let (status, _) = call_json(&http, base, key, "GET", "/indexes/new", None).await;
    let (swapped, index) = call_json(&http, base, key, "GET", "/indexes/swapped", None).await;
    out.insert("swap.indexes".into(), json!([status, swapped, index["primaryKey"]]));
    let (status, found) = call_json(
        &http,
        base,
        key,
        "POST",
        "/indexes/swapped/search",
        Some(json!({"filter": "kind = odd"})),
    )
    .await;
    out.insert("swap.search".into(), json!([status, found["estimatedTotalHits"]]));
    let swap = json!([{"indexes": ["swapped", "taken"], "rename": true}]);
    let task = write(&http, base, key, "POST", "/swap-indexes", swap).await;
    out.insert("swap.taken".into(), json!([task["status"], task["error"]["code"]]));
    Value::Object(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn renaming_an_index_answers_as_one_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let on_node = scenario(&node_url, NODE_KEY).await;
    assert_eq!(on_node["new.search"], json!([200, 15]), "{on_node}");
    assert_eq!(on_node["old.get"], json!([404, "index_not_found"]));
    assert_eq!(on_node["taken.task"], json!(["failed", "index_already_exists"]));
    assert_eq!(on_node["swap.indexes"], json!([404, 200, "id"]));
    assert_eq!(on_node["swap.search"], json!([200, 16]));
    let through = scenario(&cluster.url, "the-master").await;
    for (name, value) in on_node.as_object().expect("object") {
        assert_eq!(&through[name], value, "{name}");
    }
}
