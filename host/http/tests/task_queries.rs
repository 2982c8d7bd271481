//! Task queries through Miroir over three development nodes answer what one node answers:
//! `reverse`, `canceledBy`, `batchUids`, `*` for every filter, every 1.50 task type, and the
//! errors of `GET /tasks`, `POST /tasks/cancel` and `DELETE /tasks` for bad or missing filters.

mod common;

use common::{ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

/// Sends the same request to a base URL with a key; answers status and JSON body.
async fn ask(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let response = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// What must be equal between Miroir and one node: status, error code, and for listings the
/// total and the (type, index) sequence.
fn shape(status: u16, body: &Value) -> Value {
    if let Some(code) = body.get("code") {
        return json!({"status": status, "code": code});
    }
    if let Some(results) = body.get("results").and_then(Value::as_array) {
        let seq: Vec<Value> = results
            .iter()
            .map(|t| json!([t["type"], t["indexUid"], t["batchUid"].is_null(), t["canceledBy"]]))
            .collect();
        return json!({"status": status, "total": body["total"], "tasks": seq});
    }
    json!({"status": status, "type": body.get("type")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_queries_answer_as_one_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let http = reqwest::Client::new();
    let targets = [(node_url.as_str(), NODE_KEY), (cluster.url.as_str(), "the-master")];

    // The same history on both: two indexes, settings, documents.
    for (base, key) in targets {
        for (method, path, body) in [
            ("POST", "/indexes", json!({"uid": "tq", "primaryKey": "id"})),
            ("PATCH", "/indexes/tq/settings", json!({"filterableAttributes": ["kind"]})),
            (
                "POST",
                "/indexes/tq/documents",
                json!([{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}]),
            ),
            ("POST", "/indexes", json!({"uid": "tq2"})),
        ] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let answer: Value = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("answer")
                .json()
                .await
                .expect("json");
            let uid = answer["taskUid"].as_u64().expect("task uid");
            for _ in 0..600 {
                let (_, task) = ask(&http, base, key, "GET", &format!("/tasks/{uid}")).await;
                if task["status"] == "succeeded" {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }

    let requests = [
        ("GET", "/tasks?reverse=true&indexUids=tq&types=indexCreation,settingsUpdate&limit=5"),
        ("GET", "/tasks?reverse=true&limit=2"),
        ("GET", "/tasks?canceledBy=999999"),
        ("GET", "/tasks?afterEnqueuedAt=*&beforeFinishedAt=*&statuses=*&indexUids=*&types=*"),
        ("GET", "/tasks?types=networkTopologyChange,indexCompaction,export,upgradeDatabase"),
        ("GET", "/tasks?batchUids=999"),
        ("GET", "/tasks?indexUids=tq2"),
        ("GET", "/tasks?types=flying"),
        ("GET", "/tasks?reverse=maybe"),
        ("GET", "/tasks?canceledBy=x"),
        ("GET", "/tasks?batchUids=x"),
        ("GET", "/tasks?unknown=1"),
        ("GET", "/tasks?afterEnqueuedAt=yesterday"),
        ("DELETE", "/tasks"),
        ("POST", "/tasks/cancel"),
        ("DELETE", "/tasks?limit=2"),
        ("POST", "/tasks/cancel?reverse=true"),
        ("POST", "/tasks/cancel?canceledBy=999"),
        ("POST", "/tasks/cancel?types=flying"),
        ("DELETE", "/tasks?batchUids=999"),
        ("DELETE", "/tasks?afterEnqueuedAt=*&indexUids=nothing-here"),
    ];
    for (method, path) in requests {
        let (status, on_node) = ask(&http, targets[0].0, targets[0].1, method, path).await;
        let expected = shape(status, &on_node);
        let (status, through) = ask(&http, targets[1].0, targets[1].1, method, path).await;
        assert_eq!(shape(status, &through), expected, "{method} {path}: {through}");
        if status == 400 {
            assert_eq!(through["message"], on_node["message"], "{method} {path}");
        }
    }

    let (_, one_batch) = ask(&http, &cluster.url, "the-master", "GET", "/tasks?batchUids=2").await;
    assert_eq!(
        (one_batch["total"].as_u64(), &one_batch["results"][0]["uid"]),
        (Some(1), &json!(2))
    );

    // Every finished task names its batch.
    let (_, listing) =
        ask(&http, &cluster.url, "the-master", "GET", "/tasks?statuses=succeeded").await;
    for task in listing["results"].as_array().expect("results") {
        assert_eq!(task["batchUid"], task["uid"], "{task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_metadata_of_every_write_is_on_its_task() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let http = reqwest::Client::new();
    let writes = [
        ("POST", "/indexes", Some(json!({"uid": "cm", "primaryKey": "id"}))),
        (
            "POST",
            "/indexes/cm/documents",
            Some(json!([{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}, {"id": 3, "kind": "a"}])),
        ),
        ("PUT", "/indexes/cm/documents", Some(json!([{"id": 1, "title": "one"}]))),
        ("PATCH", "/indexes/cm/settings", Some(json!({"filterableAttributes": ["kind"]}))),
        ("POST", "/indexes/cm/documents/delete-batch", Some(json!([2]))),
        ("POST", "/indexes/cm/documents/delete", Some(json!({"filter": "kind = b"}))),
        ("DELETE", "/indexes/cm/documents/3", None),
        ("DELETE", "/indexes/cm/documents", None),
        ("PATCH", "/indexes/cm", Some(json!({"primaryKey": "id"}))),
        ("DELETE", "/indexes/cm/settings", None),
        ("DELETE", "/indexes/cm", None),
    ];
    for (base, key) in [(node_url.as_str(), NODE_KEY), (cluster.url.as_str(), "the-master")] {
        for (i, (method, path, body)) in writes.iter().enumerate() {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request = http
                .request(method.clone(), format!("{base}{path}?customMetadata=step%20{i}"))
                .bearer_auth(key);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.expect("answer");
            assert_eq!(response.status().as_u16(), 202, "{base} {method} {path}");
            let uid =
                response.json::<Value>().await.expect("json")["taskUid"].as_u64().expect("uid");
            let mut task = Value::Null;
            for _ in 0..600 {
                task = ask(&http, base, key, "GET", &format!("/tasks/{uid}")).await.1;
                if matches!(task["status"].as_str(), Some("succeeded" | "failed")) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert_eq!(
                task["customMetadata"],
                format!("step {i}"),
                "{base} {method} {path}: {task}"
            );
        }
        let (_, listing) = ask(&http, base, key, "GET", "/tasks?limit=1").await;
        assert_eq!(listing["results"][0]["customMetadata"], format!("step {}", writes.len() - 1));
        let (_, plain) = ask(&http, base, key, "GET", "/tasks?types=indexCreation&limit=100").await;
        assert!(plain["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|t| t["customMetadata"] == "step 0"));
    }
}
