//! Authentication through Miroir: the master key, API keys created through Miroir (same value
//! on every node, rights enforced as one node would), and development mode.

mod common;

use common::{ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

async fn call_with(
    cluster: &common::Cluster,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = cluster.http.request(method, format!("{}{}", cluster.url, path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn master_key_is_required_and_checked() {
    let cluster = ClusterBuilder::new(1, 2, 1).master_key("the-master").start().await;
    let (status, body) = call_with(&cluster, "GET", "/indexes", None, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("missing_authorization_header")));
    let (status, body) = call_with(&cluster, "GET", "/indexes", Some("wrong"), None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("invalid_api_key")));
    let (status, _) = call_with(&cluster, "GET", "/indexes", Some("the-master"), None).await;
    assert_eq!(status, 200);
    let (status, _) = call_with(&cluster, "GET", "/health", None, None).await;
    assert_eq!(status, 200);
    // The node key is not a client key.
    let (status, _) = call_with(&cluster, "GET", "/indexes", Some(NODE_KEY), None).await;
    assert_eq!(status, 403);
    let (status, body) = call_with(&cluster, "GET", "/_miroir/topology", Some("wrong"), None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("miroir_invalid_auth")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_master_key_everything_is_open() {
    let cluster = ClusterBuilder::new(1, 1, 1).start().await;
    let (status, _) = call_with(&cluster, "GET", "/indexes", None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_keys_exist_on_every_node_and_carry_their_rights() {
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    let (status, key) = call_with(
        &cluster,
        "POST",
        "/keys",
        Some("the-master"),
        Some(json!({"actions": ["documents.add", "documents.get", "tasks.get"], "indexes": ["products"], "expiresAt": null})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let uid = key["uid"].as_str().expect("uid generated");
    let value = key["key"].as_str().expect("key value");
    for index in 0..3 {
        let (status, on_node) = cluster.node_get(index, &format!("/keys/{uid}")).await;
        assert_eq!(status, 200);
        assert_eq!(on_node["key"], value, "node {index} derives the same key");
    }
    let (status, task) = call_with(
        &cluster,
        "POST",
        "/indexes/products/documents",
        Some(value),
        Some(json!([{"id": "k1"}])),
    )
    .await;
    assert_eq!(status, 202, "{task}");
    let (status, _) =
        call_with(&cluster, "GET", &format!("/tasks/{}", task["taskUid"]), Some(value), None).await;
    assert_eq!(status, 200);
    let (status, body) = call_with(
        &cluster,
        "PATCH",
        "/indexes/products/settings",
        Some(value),
        Some(json!({"stopWords": ["a"]})),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("invalid_api_key")));
    let (status, _) = call_with(
        &cluster,
        "POST",
        "/indexes/movies/documents",
        Some(value),
        Some(json!([{"id": "k1"}])),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call_with(&cluster, "GET", "/keys", Some(value), None).await;
    assert_eq!(status, 403, "a key without `keys.get` does not list keys");

    let (status, _) =
        call_with(&cluster, "DELETE", &format!("/keys/{uid}"), Some("the-master"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call_with(
        &cluster,
        "POST",
        "/indexes/products/documents",
        Some(value),
        Some(json!([{"id": "k2"}])),
    )
    .await;
    assert_eq!(status, 403, "a deleted key no longer works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scoped_key_lists_only_its_indexes() {
    let cluster = ClusterBuilder::new(1, 2, 1).master_key("the-master").start().await;
    for uid in ["products", "movies"] {
        cluster.send_and_wait("POST", "/indexes", &json!({ "uid": uid })).await;
    }
    let (status, key) = call_with(
        &cluster,
        "POST",
        "/keys",
        Some("the-master"),
        Some(json!({"actions": ["indexes.get"], "indexes": ["prod*"], "expiresAt": null})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let value = key["key"].as_str().expect("key value");
    let (status, listing) = call_with(&cluster, "GET", "/indexes", Some(value), None).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["total"], 1);
    assert_eq!(listing["results"][0]["uid"], "products");
    let (status, _) = call_with(&cluster, "GET", "/indexes/movies", Some(value), None).await;
    assert_eq!(status, 403);
    let (status, all) = call_with(&cluster, "GET", "/indexes", Some("the-master"), None).await;
    assert_eq!((status, all["total"].as_u64()), (200, Some(2)));
}
