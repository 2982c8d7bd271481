//! Instance routes through Miroir over three development nodes: `/webhooks` (Miroir's own,
//! fired with Miroir's task when it finishes), `/experimental-features` (sent to every node and
//! read back), `/batches` (one batch per Miroir task).

mod common;

use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// A small HTTP listener that hands every request's headers and body to the test.
async fn listener() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", socket.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(socket, app).await.expect("listener") });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_miroirs_and_fire_with_its_tasks() {
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let watcher = miroir_http::webhooks::spawn_watcher(cluster.state.clone());
    let empty = cluster.get("/webhooks").await;
    assert_eq!((empty.status, &empty.body), (200, &json!({"results": []})));

    let (url, mut received) = listener().await;
    let created = cluster
        .send_json(
            "POST",
            "/webhooks",
            &json!({"url": url, "headers": {"authorization": "Bearer x", "x-team": "search"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let uuid = created.body["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(created.body["isEditable"], true);
    assert_eq!(created.body["headers"]["authorization"], "Bearer XXX...");
    assert_eq!(created.body["headers"]["x-team"], "search");
    let listed = cluster.get("/webhooks").await;
    assert_eq!(listed.body["results"][0]["uuid"], uuid.as_str());
    let one = cluster.get(&format!("/webhooks/{uuid}")).await;
    assert_eq!((one.status, &one.body["url"]), (200, &json!(url)));
    // The nodes know nothing of it.
    let (status, _) = cluster.node_get(0, "/webhooks").await;
    assert_eq!(status, 404);

    // A Miroir task finishing fires it, with Miroir's task and the configured headers.
    let answer = cluster
        .send_json(
            "POST",
            "/indexes?customMetadata=hooked",
            &json!({"uid": "hooked", "primaryKey": "id"}),
        )
        .await;
    let task_uid = answer.body["taskUid"].as_u64().expect("task uid");
    let (headers, body) = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("the webhook fires within 20 s")
        .expect("a delivery");
    assert_eq!(headers["authorization"], "Bearer x");
    assert_eq!(headers["x-team"], "search");
    let task: Value = serde_json::from_slice(body.trim_ascii_end()).expect("one JSON line");
    assert_eq!(
        (task["uid"].as_u64(), task["status"].as_str()),
        (Some(task_uid), Some("succeeded"))
    );
    assert_eq!(task["type"], "indexCreation");
    assert_eq!(task["batchUid"], task_uid);

    // Update: url kept, headers merged, `null` removes one.
    let updated = cluster
        .send_json(
            "PATCH",
            &format!("/webhooks/{uuid}"),
            &json!({"headers": {"x-team": null, "x-env": "test"}}),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(updated.body["headers"], json!({"authorization": "Bearer XXX...", "x-env": "test"}));

    // Errors.
    let bad = cluster.send_json("POST", "/webhooks", &json!({"url": "not a url"})).await;
    assert_eq!((bad.status, bad.body["code"].as_str()), (400, Some("invalid_webhook_url")));
    let bad = cluster.send_json("POST", "/webhooks", &json!({"url": url, "colour": 1})).await;
    assert_eq!((bad.status, bad.body["code"].as_str()), (400, Some("bad_request")));
    let missing = cluster.get("/webhooks/3c7bc6a6-0000-4000-8000-000000000000").await;
    assert_eq!((missing.status, missing.body["code"].as_str()), (404, Some("webhook_not_found")));
    let invalid = cluster.get("/webhooks/nope").await;
    assert_eq!(
        (invalid.status, invalid.body["code"].as_str()),
        (400, Some("invalid_webhook_uuid"))
    );

    let deleted = cluster.call("DELETE", &format!("/webhooks/{uuid}"), None, &[]).await;
    assert_eq!(deleted.status, 204);
    let empty = cluster.get("/webhooks").await;
    assert_eq!(empty.body, json!({"results": []}));
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn experimental_features_reach_every_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let (_, on_node) = one.node_get(0, "/experimental-features").await;
    let through = cluster.get("/experimental-features").await;
    assert_eq!((through.status, &through.body), (200, &on_node));
    assert_eq!(on_node["containsFilter"], false);

    let patched = cluster
        .send_json("PATCH", "/experimental-features", &json!({"containsFilter": true}))
        .await;
    assert_eq!((patched.status, &patched.body["containsFilter"]), (200, &json!(true)));
    for index in 0..3 {
        let (_, features) = cluster.node_get(index, "/experimental-features").await;
        assert_eq!(features["containsFilter"], true, "node {index}");
        assert_eq!(features["metrics"], false);
    }
    let read_back = cluster.get("/experimental-features").await;
    assert_eq!(read_back.body["containsFilter"], true);

    let http = reqwest::Client::new();
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let on_node: Value = http
        .patch(format!("{node_url}/experimental-features"))
        .bearer_auth(NODE_KEY)
        .json(&json!({"flying": true}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let through =
        cluster.send_json("PATCH", "/experimental-features", &json!({"flying": true})).await;
    assert_eq!(through.status, 400);
    assert_eq!(through.body, on_node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_are_miroirs_tasks() {
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "b", "primaryKey": "id"})).await;
    for id in 0..4 {
        cluster.send_and_wait("POST", "/indexes/b/documents", &json!([{ "id": id }])).await;
    }
    let listed = cluster.get("/batches?limit=2").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!((listed.body["total"].as_u64(), listed.body["limit"].as_u64()), (Some(5), Some(2)));
    let first = &listed.body["results"][0];
    assert_eq!(first["details"], json!({"receivedDocuments": 1, "indexedDocuments": 1}));
    assert_eq!(first["stats"]["totalNbTasks"], 1);
    assert_eq!(first["stats"]["status"], json!({"succeeded": 1}));
    assert_eq!(first["stats"]["types"], json!({"documentAdditionOrUpdate": 1}));
    assert_eq!(listed.body["next"], first["uid"].as_u64().expect("uid") - 2);
    let uid = first["uid"].as_u64().expect("uid");
    let one = cluster.get(&format!("/batches/{uid}")).await;
    assert_eq!((one.status, &one.body["uid"]), (200, &json!(uid)));
    let task = cluster.get(&format!("/tasks/{uid}")).await;
    assert_eq!(task.body["batchUid"], uid);
    let reversed = cluster.get("/batches?reverse=true&limit=1&types=indexCreation").await;
    assert_eq!(reversed.body["results"][0]["stats"]["types"], json!({"indexCreation": 1}));
    let missing = cluster.get("/batches/99999").await;
    assert_eq!((missing.status, missing.body["code"].as_str()), (404, Some("batch_not_found")));
    let invalid = cluster.get("/batches/x").await;
    assert_eq!((invalid.status, invalid.body["code"].as_str()), (400, Some("invalid_batch_uids")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dumps_and_snapshots_are_one_task_over_every_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let http = reqwest::Client::new();
    for (path, kind) in [("/dumps", "dumpCreation"), ("/snapshots", "snapshotCreation")] {
        let on_node: Value = http
            .post(format!("{node_url}{path}"))
            .bearer_auth(NODE_KEY)
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("json");
        let uid = on_node["taskUid"].as_u64().expect("uid");
        let mut node_task = Value::Null;
        for _ in 0..600 {
            node_task = one.node_get(0, &format!("/tasks/{uid}")).await.1;
            if node_task["status"] == "succeeded" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answer = cluster.call("POST", path, None, &[]).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        assert_eq!((&answer.body["type"], &answer.body["indexUid"]), (&json!(kind), &Value::Null));
        let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
        assert_eq!(task["status"], "succeeded", "{task}");
        let keys =
            |t: &Value| t["details"].as_object().map(|d| d.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&task), keys(&node_task), "{task} vs {node_task}");
        if kind == "dumpCreation" {
            assert!(task["details"]["dumpUid"].is_string(), "{task}");
        }
        // Every node made its own.
        for index in 0..3 {
            let (_, tasks) = cluster.node_get(index, &format!("/tasks?types={kind}")).await;
            assert_eq!(tasks["total"], 1, "node {index}");
        }
    }
    let network = cluster.get("/network").await;
    assert_eq!((network.status, network.body["code"].as_str()), (400, Some("feature_not_enabled")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_is_one_task_over_every_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let http = reqwest::Client::new();
    let node_post = |path: &'static str| {
        let request = http.post(format!("{node_url}{path}")).bearer_auth(NODE_KEY);
        async move {
            let response = request.send().await.expect("answer");
            (response.status().as_u16(), response.json::<Value>().await.expect("json"))
        }
    };
    let (status, missing_on_node) = node_post("/indexes/nothing/compact").await;
    let missing = cluster.call("POST", "/indexes/nothing/compact", None, &[]).await;
    assert_eq!((missing.status, &missing.body), (status, &missing_on_node));

    let (_, created) = {
        let request = http
            .post(format!("{node_url}/indexes"))
            .bearer_auth(NODE_KEY)
            .json(&json!({"uid": "c", "primaryKey": "id"}));
        let response = request.send().await.expect("answer");
        (response.status().as_u16(), response.json::<Value>().await.expect("json"))
    };
    assert!(created["taskUid"].is_u64());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, on_node) = node_post("/indexes/c/compact").await;
    assert_eq!(status, 202, "{on_node}");
    let uid = on_node["taskUid"].as_u64().expect("uid");
    let mut node_task = Value::Null;
    for _ in 0..600 {
        node_task = one.node_get(0, &format!("/tasks/{uid}")).await.1;
        if node_task["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "c", "primaryKey": "id"})).await;
    cluster.send_and_wait("POST", "/indexes/c/documents", &json!([{"id": 1}, {"id": 2}])).await;
    let answer = cluster.call("POST", "/indexes/c/compact", None, &[]).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(
        (&answer.body["type"], &answer.body["indexUid"]),
        (&json!("indexCompaction"), &json!("c"))
    );
    let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!((&task["status"], &node_task["status"]), (&json!("succeeded"), &json!("succeeded")));
    let keys = |t: &Value| t["details"].as_object().map(|d| d.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&task), keys(&node_task), "{task} vs {node_task}");
    assert!(task["details"]["preCompactionSize"].is_string(), "{task}");
}
