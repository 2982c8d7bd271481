//! Bad input is refused in Meilisearch's error shape, nothing of it is written, and node errors
//! never mention bookkeeping fields.

mod common;

use common::ClusterBuilder;
use serde_json::{json, Value};

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(body["type"].is_string(), "{body}");
    assert_eq!(body["link"], format!("https://docs.meilisearch.com/errors#{code}"), "{body}");
}

async fn cluster_with_index() -> common::Cluster {
    let cluster = ClusterBuilder::new(1, 3, 1).max_body_bytes(4096).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    cluster
}

async fn node_document_count(cluster: &common::Cluster) -> u64 {
    let mut total = 0;
    for index in 0..cluster.nodes.len() {
        let (_, page) = cluster.node_get(index, "/indexes/products/documents?limit=1").await;
        total += page["total"].as_u64().unwrap_or(0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_payloads_are_refused() {
    let cluster = cluster_with_index().await;
    let json = cluster
        .call(
            "POST",
            "/indexes/products/documents",
            Some(("application/json", b"[{\"id\": 1,".to_vec())),
            &[],
        )
        .await;
    assert_eq!(json.status, 400);
    assert_error(&json.body, "malformed_payload");
    let csv = cluster
        .call(
            "POST",
            "/indexes/products/documents",
            Some(("text/csv", b"id,price:number\na,abc\n".to_vec())),
            &[],
        )
        .await;
    assert_eq!(csv.status, 400);
    assert_error(&csv.body, "malformed_payload");
    let ndjson = cluster
        .call(
            "POST",
            "/indexes/products/documents",
            Some(("application/x-ndjson", b"{\"id\":1}\n{nope\n".to_vec())),
            &[],
        )
        .await;
    assert_eq!(ndjson.status, 400);
    assert_error(&ndjson.body, "malformed_payload");
    let wrong = cluster
        .call("POST", "/indexes/products/documents", Some(("text/plain", b"hi".to_vec())), &[])
        .await;
    assert_eq!(wrong.status, 415);
    assert_error(&wrong.body, "invalid_content_type");
    assert_eq!(node_document_count(&cluster).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserved_fields_are_refused_synchronously() {
    let cluster = cluster_with_index().await;
    let answer = cluster
        .send_json("POST", "/indexes/products/documents", &json!([{"id": "a", "_miroir_shard": 3}]))
        .await;
    assert_eq!(answer.status, 400);
    assert_error(&answer.body, "miroir_reserved_field");
    assert_eq!(node_document_count(&cluster).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_key_must_be_resolvable() {
    let cluster = ClusterBuilder::new(1, 3, 1).start().await;
    let missing = cluster
        .send_json("POST", "/indexes/nokey/documents", &json!([{"title": "no candidate"}]))
        .await;
    // As Meilisearch: no candidate fails the task, and the index the write would create is not
    // left behind.
    assert_eq!(missing.status, 202, "{:?}", missing.body);
    let task = cluster.wait_task(missing.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "failed");
    assert_error(&task["error"], "index_primary_key_no_candidate_found");
    assert_eq!(cluster.get("/indexes/nokey").await.status, 404);
    // As Meilisearch: an ambiguous key fails the task.
    let ambiguous = cluster
        .send_json("POST", "/indexes/nokey/documents", &json!([{"id": 1, "sku_id": 2}]))
        .await;
    assert_eq!(ambiguous.status, 202);
    let task = cluster.wait_task(ambiguous.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "failed");
    assert_error(&task["error"], "index_primary_key_multiple_candidates_found");
    // Inferred from the one field ending in `id`.
    let inferred = cluster
        .send_json("POST", "/indexes/nokey/documents", &json!([{"sku_id": "a1", "title": "x"}]))
        .await;
    let task = cluster.wait_task(inferred.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(cluster.get("/indexes/nokey").await.body["primaryKey"], "sku_id");
    let via_query = cluster
        .send_json(
            "POST",
            "/indexes/other/documents?primaryKey=code",
            &json!([{"code": "z", "sku_id": 1, "id": 2}]),
        )
        .await;
    let task = cluster.wait_task(via_query.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(cluster.get("/indexes/other/documents/z").await.body["code"], "z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_and_missing_ids_fail_the_task_and_write_nothing() {
    let cluster = cluster_with_index().await;
    for (documents, code) in [
        (json!([{"id": "ok"}, {"id": "has space"}]), "invalid_document_id"),
        (json!([{"id": "ok"}, {"title": "no id"}]), "missing_document_id"),
        (json!([{"id": 1.5}]), "invalid_document_id"),
    ] {
        let answer = cluster.send_json("POST", "/indexes/products/documents", &documents).await;
        assert_eq!(answer.status, 202);
        let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
        assert_eq!(task["status"], "failed");
        assert_error(&task["error"], code);
        assert_eq!(task["details"]["indexedDocuments"], 0);
    }
    assert_eq!(node_document_count(&cluster).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_over_the_limit_are_refused_with_413_and_nothing_written() {
    let cluster = cluster_with_index().await;
    let documents: Vec<Value> =
        (0..200).map(|i| json!({"id": format!("d{i}"), "text": "x".repeat(40)})).collect();
    let answer =
        cluster.send_json("POST", "/indexes/products/documents", &Value::from(documents)).await;
    assert_eq!(answer.status, 413);
    assert_error(&answer.body, "miroir_payload_too_large");
    assert_eq!(node_document_count(&cluster).await, 0);
    let tasks = cluster.get("/tasks?types=documentAdditionOrUpdate").await;
    assert_eq!(tasks.body["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_indexes_and_documents_are_404() {
    let cluster = cluster_with_index().await;
    let index = cluster.get("/indexes/nope").await;
    assert_eq!(index.status, 404);
    assert_error(&index.body, "index_not_found");
    let document = cluster.get("/indexes/nope/documents/a").await;
    assert_eq!(document.status, 404);
    assert_error(&document.body, "index_not_found");
    let missing = cluster.get("/indexes/products/documents/nope").await;
    assert_eq!(missing.status, 404);
    assert_error(&missing.body, "document_not_found");
    let route = cluster.get("/nope").await;
    assert_eq!(route.status, 404);
    let task = cluster.get("/tasks/123456").await;
    assert_eq!(task.status, 404);
    assert_error(&task.body, "task_not_found");
}

/// The error one devnode holding the same settings gives to `request` on `/search`.
async fn one_node_error(settings: &Value, request: &Value) -> Value {
    let node = miroir_devnode::testing::TestNode::start(None);
    let http = reqwest::Client::new();
    let url = node.url();
    let send = |method: reqwest::Method, path: &str, body: &Value| {
        http.request(method, format!("{url}{path}")).json(body).send()
    };
    send(reqwest::Method::POST, "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await
        .expect("create");
    let task: Value = send(reqwest::Method::PATCH, "/indexes/products/settings", settings)
        .await
        .expect("settings")
        .json()
        .await
        .expect("a task");
    // The error must be the one the node gives with these settings: wait until they apply.
    let task_url = format!("{url}/tasks/{}", task["taskUid"]);
    for _ in 0..500 {
        let state: Value =
            http.get(&task_url).send().await.expect("task").json().await.expect("json");
        if state["status"] == "succeeded" {
            break;
        }
        assert_ne!(state["status"], "failed", "{state}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for _ in 0..200 {
        let answer: Value = send(reqwest::Method::POST, "/indexes/products/search", request)
            .await
            .expect("search")
            .json()
            .await
            .expect("json");
        if answer["code"] != "index_not_found" && answer.get("hits").is_none() {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the single node never answered an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filter_errors_never_mention_bookkeeping_fields() {
    let cluster = cluster_with_index().await;
    let request = json!({"q": "", "filter": "title = x"});
    let answer = cluster.send_json("POST", "/indexes/products/search", &request).await;
    assert_eq!(answer.status, 400);
    assert_error(&answer.body, "invalid_search_filter");
    let alone = one_node_error(&json!({}), &request).await;
    assert_eq!(answer.body["message"], alone["message"], "no filterable attribute configured");
    assert!(!answer.body.to_string().contains("_miroir"), "{}", answer.body);

    cluster
        .send_and_wait(
            "PATCH",
            "/indexes/products/settings",
            &json!({"filterableAttributes": ["brand", "price"]}),
        )
        .await;
    let answer = cluster.send_json("POST", "/indexes/products/search", &request).await;
    let alone =
        one_node_error(&json!({"filterableAttributes": ["brand", "price"]}), &request).await;
    assert_eq!(answer.body["message"], alone["message"]);
    let facets = json!({"q": "", "facets": ["title"]});
    let answer = cluster.send_json("POST", "/indexes/products/search", &facets).await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    let alone = one_node_error(&json!({"filterableAttributes": ["brand", "price"]}), &facets).await;
    assert_eq!(answer.body["message"], alone["message"]);
}
