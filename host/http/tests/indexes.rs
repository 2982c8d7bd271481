//! Index management broadcast to every node, and task cancelation acting on node tasks.

mod common;

use std::time::Duration;

use common::ClusterBuilder;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn indexes_are_listed_updated_swapped_and_deleted_on_every_node() {
    let cluster = ClusterBuilder::new(2, 2, 1).start().await;
    for uid in ["a", "b", "c"] {
        let task = cluster.send_and_wait("POST", "/indexes", &json!({"uid": uid})).await;
        assert_eq!(task["status"], "succeeded", "{task}");
    }
    let page = cluster.get("/indexes?offset=1&limit=1").await;
    assert_eq!(page.body["total"], 3);
    assert_eq!(page.body["offset"], 1);
    assert_eq!(page.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["results"][0]["uid"], "b");
    for key in ["uid", "createdAt", "updatedAt", "primaryKey"] {
        assert!(page.body["results"][0].get(key).is_some(), "{key}");
    }

    let updated = cluster.send_and_wait("PATCH", "/indexes/a", &json!({"primaryKey": "sku"})).await;
    assert_eq!(updated["status"], "succeeded", "{updated}");
    assert_eq!(cluster.get("/indexes/a").await.body["primaryKey"], "sku");
    for index in 0..4 {
        assert_eq!(cluster.node_get(index, "/indexes/a").await.1["primaryKey"], "sku");
    }

    let written =
        cluster.send_and_wait("POST", "/indexes/b/documents", &json!([{"id": "only-in-b"}])).await;
    assert_eq!(written["status"], "succeeded");
    let swapped =
        cluster.send_and_wait("POST", "/swap-indexes", &json!([{"indexes": ["b", "c"]}])).await;
    assert_eq!(swapped["status"], "succeeded", "{swapped}");
    assert_eq!(swapped["indexUid"], Value::Null);
    assert_eq!(cluster.get("/indexes/c/documents/only-in-b").await.status, 200);
    assert_eq!(cluster.get("/indexes/c").await.body["primaryKey"], "id");

    let deleted = cluster.send_and_wait("DELETE", "/indexes/c", &json!(null)).await;
    assert_eq!(deleted["status"], "succeeded", "{deleted}");
    assert_eq!(deleted["details"]["deletedDocuments"], 1);
    for index in 0..4 {
        assert_eq!(cluster.node_get(index, "/indexes/c").await.0, 404);
    }
    let missing = cluster.call("DELETE", "/indexes/c", None, &[]).await;
    let task = cluster.wait_task(missing.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "failed");
    assert_eq!(task["error"]["code"], "index_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canceling_a_task_cancels_its_node_tasks() {
    let cluster = ClusterBuilder::new(1, 2, 1).task_delay(Duration::from_millis(400)).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "slow", "primaryKey": "id"})).await;
    let documents: Vec<Value> = (0..20).map(|i| json!({"id": i})).collect();
    let first =
        cluster.send_json("POST", "/indexes/slow/documents", &Value::from(documents.clone())).await;
    let second =
        cluster.send_json("POST", "/indexes/slow/documents", &Value::from(documents)).await;
    let uid = second.body["taskUid"].as_u64().expect("uid");
    let cancel = cluster.call("POST", &format!("/tasks/cancel?uids={uid}"), None, &[]).await;
    assert_eq!(cancel.status, 202, "{:?}", cancel.body);
    assert_eq!(cancel.body["type"], "taskCancelation");
    let cancelation = cluster.wait_task(cancel.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(cancelation["status"], "succeeded", "{cancelation}");
    assert_eq!(cancelation["details"]["matchedTasks"], 1);
    let canceled = cluster.wait_task(uid).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["canceledBy"], cancel.body["taskUid"]);
    assert_eq!(
        cluster.wait_task(first.body["taskUid"].as_u64().expect("uid")).await["status"],
        "succeeded"
    );
    let refused = cluster.call("POST", "/tasks/cancel", None, &[]).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["code"], "missing_task_filters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_creation_that_fails_on_one_node_is_rolled_back_on_the_others() {
    let cluster = ClusterBuilder::new(1, 3, 1).start().await;
    // Node 1 already holds an index Miroir does not know.
    let node = cluster.nodes[1].as_ref().expect("node");
    let created = cluster
        .http
        .post(format!("{}/indexes", node.url()))
        .bearer_auth(common::NODE_KEY)
        .json(&json!({"uid": "clash"}))
        .send()
        .await
        .expect("node answers");
    assert_eq!(created.status(), 202);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let task = cluster.send_and_wait("POST", "/indexes", &json!({"uid": "clash"})).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "index_already_exists");
    assert_eq!(cluster.get("/indexes/clash").await.status, 404);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for index in [0, 2] {
        while cluster.node_get(index, "/indexes/clash").await.0 != 404 {
            assert!(std::time::Instant::now() < deadline, "node {index} still has the index");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(cluster.node_get(1, "/indexes/clash").await.0, 200, "the node's own index stays");
}
