//! The default API keys through Miroir: each node creates its own, Miroir presents one set that
//! works on every node.

mod common;

use common::{ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

const MASTER: &str = "the-master";

async fn call_with(
    cluster: &common::Cluster,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = cluster.http.request(method, format!("{}{}", cluster.url, path));
    request = request.bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn default_key<'a>(listing: &'a Value, name: &str) -> Vec<&'a Value> {
    listing["results"].as_array().expect("results").iter().filter(|k| k["name"] == name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_set_of_default_keys_works_on_every_node() {
    let mut cluster = ClusterBuilder::new(1, 3, 1).master_key(MASTER).start().await;
    // Like real nodes, each development node has its own defaults.
    let mut node_uids = Vec::new();
    for index in 0..3 {
        let (status, keys) = cluster.node_get(index, "/keys").await;
        assert_eq!(status, 200);
        let search = default_key(&keys, "Default Search API Key");
        assert_eq!(search.len(), 1, "{keys}");
        node_uids.push(search[0]["uid"].as_str().expect("uid").to_owned());
    }
    assert_ne!(node_uids[0], node_uids[1]);
    assert_ne!(node_uids[1], node_uids[2]);
    let (_, one_node) = cluster.node_get(0, "/keys").await;

    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    cluster
        .send_and_wait(
            "POST",
            "/indexes/products/documents",
            &json!([{"id": 1, "title": "red shoe"}, {"id": 2, "title": "blue shoe"}, {"id": 3, "title": "green hat"}]),
        )
        .await;

    let (status, listing) = call_with(&cluster, "GET", "/keys", MASTER, None).await;
    assert_eq!(status, 200, "{listing}");
    let names = |listing: &Value| {
        let mut names: Vec<String> = listing["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|k| k["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&listing), names(&one_node), "the same default keys as one node");
    assert_eq!(listing["total"], one_node["total"]);
    let search = default_key(&listing, "Default Search API Key")[0].clone();
    let admin = default_key(&listing, "Default Admin API Key")[0].clone();
    assert_eq!(search["actions"], json!(["search"]));
    assert!(!node_uids.contains(&search["uid"].as_str().expect("uid").to_owned()));

    // A frontend with the default search key searches (every node is asked over 3 nodes).
    let search_key = search["key"].as_str().expect("key");
    let (status, found) = call_with(
        &cluster,
        "POST",
        "/indexes/products/search",
        search_key,
        Some(json!({"q": "shoe"})),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["estimatedTotalHits"], 2);
    let (status, _) =
        call_with(&cluster, "GET", "/indexes/products/search?q=hat", search_key, None).await;
    assert_eq!(status, 200);
    let (status, refused) = call_with(
        &cluster,
        "POST",
        "/indexes/products/documents",
        search_key,
        Some(json!([{"id": 4}])),
    )
    .await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("invalid_api_key")));

    // The default admin key writes to every shard.
    let admin_key = admin["key"].as_str().expect("key");
    let (status, task) = call_with(
        &cluster,
        "POST",
        "/indexes/products/documents",
        admin_key,
        Some(json!((10..40).map(|id| json!({"id": id, "title": "sock"})).collect::<Vec<_>>())),
    )
    .await;
    assert_eq!(status, 202, "{task}");
    let task = cluster.wait_task(task["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let (status, stats) =
        call_with(&cluster, "GET", "/indexes/products/stats", admin_key, None).await;
    assert_eq!((status, stats["numberOfDocuments"].as_u64()), (200, Some(33)), "{stats}");

    // One key by uid or value; a node's own default is not one of Miroir's keys.
    let uid = search["uid"].as_str().expect("uid");
    let (status, by_uid) = call_with(&cluster, "GET", &format!("/keys/{uid}"), MASTER, None).await;
    assert_eq!((status, &by_uid["key"]), (200, &search["key"]));
    let (status, by_value) =
        call_with(&cluster, "GET", &format!("/keys/{search_key}"), MASTER, None).await;
    assert_eq!((status, &by_value["uid"]), (200, &search["uid"]));
    let (status, hidden) =
        call_with(&cluster, "GET", &format!("/keys/{}", node_uids[0]), MASTER, None).await;
    assert_eq!((status, hidden["code"].as_str()), (404, Some("api_key_not_found")));
    let (_, node_key) = cluster.node_get(0, &format!("/keys/{}", node_uids[0])).await;
    let own = node_key["key"].as_str().expect("node default value");
    let (status, _) = call_with(&cluster, "GET", "/indexes/products/search", own, None).await;
    assert_eq!(status, 403, "one node's own default key is not valid through Miroir");

    // Deleted through Miroir, the default key stays deleted (also after a restart).
    let (status, _) = call_with(&cluster, "DELETE", &format!("/keys/{uid}"), MASTER, None).await;
    assert_eq!(status, 204);
    cluster.restart_miroir().await;
    let (_, listing) = call_with(&cluster, "GET", "/keys", MASTER, None).await;
    assert!(default_key(&listing, "Default Search API Key").is_empty(), "{listing}");
    assert_eq!(default_key(&listing, "Default Admin API Key").len(), 1);
    let (status, _) =
        call_with(&cluster, "POST", "/indexes/products/search", search_key, Some(json!({}))).await;
    assert_eq!(status, 403);
    let _ = NODE_KEY;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_with_key_actions_manage_keys_as_on_one_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key(MASTER).start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key(MASTER).start().await;
    let http = reqwest::Client::new();
    let manager_body =
        json!({"actions": ["keys.get", "keys.create"], "indexes": ["*"], "expiresAt": null});
    // On one node.
    let node_manager: Value = http
        .post(format!("{node_url}/keys"))
        .bearer_auth(NODE_KEY)
        .json(&manager_body)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let node_key = node_manager["key"].as_str().expect("key").to_owned();
    let on_node = |method: &'static str, path: String, body: Option<Value>| {
        let http = http.clone();
        let url = format!("{node_url}{path}");
        let key = node_key.clone();
        async move {
            let mut request = http
                .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url)
                .bearer_auth(key);
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send().await.expect("answer").status().as_u16()
        }
    };
    // Through Miroir.
    let (status, manager) = call_with(&cluster, "POST", "/keys", MASTER, Some(manager_body)).await;
    assert_eq!(status, 201);
    let manager = manager["key"].as_str().expect("key");
    let new_key = json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null});
    let (listed, _) = call_with(&cluster, "GET", "/keys", manager, None).await;
    let (created, made) =
        call_with(&cluster, "POST", "/keys", manager, Some(new_key.clone())).await;
    let uid = made["uid"].as_str().expect("uid");
    let (deleted, _) = call_with(&cluster, "DELETE", &format!("/keys/{uid}"), manager, None).await;
    assert_eq!((listed, created, deleted), (200, 201, 403));
    assert_eq!(listed, on_node("GET", "/keys".into(), None).await);
    assert_eq!(created, on_node("POST", "/keys".into(), Some(new_key)).await);
    assert_eq!(deleted, on_node("DELETE", format!("/keys/{uid}"), None).await);
}
