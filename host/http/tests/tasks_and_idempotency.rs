//! Tasks: Meilisearch's shape and filters, persistence across a restart of Miroir, and
//! idempotency keys.

mod common;

use common::ClusterBuilder;
use serde_json::{json, Value};

async fn node_task_total(cluster: &common::Cluster) -> u64 {
    let mut total = 0;
    for index in 0..cluster.nodes.len() {
        total += cluster.node_get(index, "/tasks?limit=1").await.1["total"].as_u64().unwrap_or(0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_key_replays_the_task_and_refuses_another_body() {
    let cluster = ClusterBuilder::new(1, 3, 1).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    let body = serde_json::to_vec(&json!([{"id": "a"}, {"id": "b"}])).expect("json");
    let key = [("Idempotency-Key", "write-1")];
    let first = cluster
        .call("POST", "/indexes/products/documents", Some(("application/json", body.clone())), &key)
        .await;
    assert_eq!(first.status, 202);
    cluster.wait_task(first.body["taskUid"].as_u64().expect("uid")).await;
    let node_tasks = node_task_total(&cluster).await;
    let again = cluster
        .call("POST", "/indexes/products/documents", Some(("application/json", body)), &key)
        .await;
    assert_eq!(again.status, 202);
    assert_eq!(again.body["taskUid"], first.body["taskUid"]);
    assert_eq!(node_task_total(&cluster).await, node_tasks, "a replay does no node work");
    let other = serde_json::to_vec(&json!([{"id": "c"}])).expect("json");
    let reused = cluster
        .call("POST", "/indexes/products/documents", Some(("application/json", other)), &key)
        .await;
    assert_eq!(reused.status, 409);
    assert_eq!(reused.body["code"], "miroir_idempotency_key_reused");

    // A write that failed its task is replayed too, not failed again under a new uid.
    let bad = serde_json::to_vec(&json!([{"id": "has space"}])).expect("json");
    let key = [("Idempotency-Key", "write-2")];
    let first = cluster
        .call("POST", "/indexes/products/documents", Some(("application/json", bad.clone())), &key)
        .await;
    let again = cluster
        .call("POST", "/indexes/products/documents", Some(("application/json", bad)), &key)
        .await;
    assert_eq!(again.body["taskUid"], first.body["taskUid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_have_meilisearch_shape_filters_and_survive_a_restart() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).start().await;
    let created = cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    assert_eq!(created["type"], "indexCreation");
    assert_eq!(created["details"], json!({"primaryKey": "id"}));
    let documents: Vec<Value> =
        (0..50).map(|i| json!({"id": i, "title": format!("t{i}")})).collect();
    let added =
        cluster.send_and_wait("POST", "/indexes/products/documents", &Value::from(documents)).await;
    for field in [
        "uid",
        "indexUid",
        "status",
        "type",
        "canceledBy",
        "details",
        "error",
        "duration",
        "enqueuedAt",
        "startedAt",
        "finishedAt",
    ] {
        assert!(added.get(field).is_some(), "task lacks {field}: {added}");
    }
    let deleted = cluster
        .send_and_wait(
            "POST",
            "/indexes/products/documents/delete-batch",
            &json!([1, 2, "3", "missing"]),
        )
        .await;
    assert_eq!(deleted["status"], "succeeded", "{deleted}");
    assert_eq!(deleted["details"]["providedIds"], 4);
    assert_eq!(deleted["details"]["deletedDocuments"], 3, "counted once, not once per group");
    let one = cluster.call("DELETE", "/indexes/products/documents/4", None, &[]).await;
    let one = cluster.wait_task(one.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(one["details"]["deletedDocuments"], 1, "{one}");

    cluster.restart_miroir().await;
    let again = cluster.get(&format!("/tasks/{}", added["uid"])).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status"], "succeeded");
    assert_eq!(again.body["details"], json!({"receivedDocuments": 50, "indexedDocuments": 50}));
    let listed = cluster
        .get("/tasks?types=documentAdditionOrUpdate,documentDeletion&statuses=succeeded&limit=2")
        .await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["total"], 3);
    assert_eq!(listed.body["limit"], 2);
    assert_eq!(listed.body["results"].as_array().map(Vec::len), Some(2));
    assert!(listed.body["next"].is_u64(), "{:?}", listed.body);
    let bad = cluster.get("/tasks?statuses=nope").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "invalid_task_statuses");
    assert_eq!(cluster.get("/indexes/products").await.body["primaryKey"], "id");
    assert_eq!(cluster.get("/indexes/products/documents/5").await.body["title"], "t5");
}

/// The settings of `products` once their version (`X-Miroir-Settings-Version`) reached
/// `version`: the commit runs once the node tasks finished, and is visible shortly after.
async fn settings_version_reaching(cluster: &common::Cluster, version: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let settings = cluster.get("/indexes/products/settings").await;
        let current: u64 = settings.headers["x-miroir-settings-version"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        if current >= version {
            return settings.body;
        }
        assert!(std::time::Instant::now() < deadline, "settings version stayed at {current}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_are_verified_committed_and_read_back_as_written() {
    let cluster = ClusterBuilder::new(1, 3, 1).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    let task = cluster
        .send_and_wait(
            "PATCH",
            "/indexes/products/settings",
            &json!({"filterableAttributes": ["brand"], "rankingRules": ["words", "typo", "proximity", "attributeRank", "sort", "wordPosition", "exactness"]}),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["details"]["filterableAttributes"], json!(["brand"]));
    // Each change is committed in the background once every node applied it (a verification
    // that finds the nodes mid-way through a later change leaves the commit to that change's
    // own): the first change is committed before the next one is sent.
    let committed = settings_version_reaching(&cluster, 1).await;
    assert_eq!(committed["filterableAttributes"], json!(["brand"]));
    let sub = cluster
        .call(
            "PUT",
            "/indexes/products/settings/sortable-attributes",
            Some(("application/json", b"[\"price\"]".to_vec())),
            &[],
        )
        .await;
    let sub_task = cluster.wait_task(sub.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(sub_task["details"], json!({"sortableAttributes": ["price"]}));
    let filterable = cluster.get("/indexes/products/settings/filterable-attributes").await;
    assert_eq!(filterable.body, json!(["brand"]));
    let (_, on_node) =
        cluster.node_get(1, "/indexes/products/settings/filterable-attributes").await;
    assert!(on_node.as_array().expect("list").contains(&json!("_miroir_shard")));
    let committed = settings_version_reaching(&cluster, 2).await;
    assert_eq!(committed["sortableAttributes"], json!(["price"]));
    let reset =
        cluster.call("DELETE", "/indexes/products/settings/filterable-attributes", None, &[]).await;
    cluster.wait_task(reset.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(
        cluster.get("/indexes/products/settings/filterable-attributes").await.body,
        json!([])
    );
    let (_, on_node) =
        cluster.node_get(0, "/indexes/products/settings/filterable-attributes").await;
    assert_eq!(on_node, json!(["_miroir_shard"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_tasks_removes_them_from_miroir_and_the_nodes() {
    let cluster = ClusterBuilder::new(1, 2, 1).master_key("k").start().await;
    let created =
        cluster.send_and_wait("POST", "/indexes", &json!({"uid": "t", "primaryKey": "id"})).await;
    let added = cluster.send_and_wait("POST", "/indexes/t/documents", &json!([{"id": 1}])).await;
    assert_eq!(added["status"], "succeeded");
    let (first, second) = (created["uid"].as_u64().unwrap(), added["uid"].as_u64().unwrap());
    let answer = cluster.call("DELETE", &format!("/tasks?uids={first}"), None, &[]).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let deletion = cluster.wait_task(answer.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(deletion["type"], "taskDeletion");
    assert_eq!(deletion["status"], "succeeded", "{deletion}");
    assert_eq!(cluster.get(&format!("/tasks/{first}")).await.status, 404);
    assert_eq!(cluster.get(&format!("/tasks/{second}")).await.status, 200, "other tasks stay");
    let listed = cluster.get(&format!("/tasks?uids={first},{second}")).await;
    assert_eq!(listed.body["total"], 1, "{:?}", listed.body);
}
