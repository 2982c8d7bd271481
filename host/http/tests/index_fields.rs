//! `POST /indexes/{uid}/fields` through Miroir over three development nodes answers what one
//! node answers: every field (whichever node holds documents with it), in order, with what the
//! settings make of it, paged, bookkeeping hidden; a bad body gets one node's error.

mod common;

use common::{ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

async fn post(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = http
        .post(format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fields_are_listed_as_one_node_lists_them() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let docs = json!([
        {"id": 1, "kind": "a", "rank": 3, "title": "alpha"},
        {"id": 2, "kind": "b", "rank": 1, "title": "beta"},
        {"id": 3, "kind": "a", "rank": 2, "title": "gamma", "rare": true},
        {"id": 4, "kind": "b", "rank": 5, "title": "delta"},
    ]);
    let settings = json!({"filterableAttributes": ["kind"], "sortableAttributes": ["rank"], "rankingRules": ["words", "rank:desc"]});
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "f", "primaryKey": "id"})).await;
    cluster.send_and_wait("PATCH", "/indexes/f/settings", &settings).await;
    cluster.send_and_wait("POST", "/indexes/f/documents", &docs).await;
    let http = reqwest::Client::new();
    // One node, written directly (processed in order: waiting for the last write is enough).
    post(&http, &node_url, NODE_KEY, "/indexes", json!({"uid": "f", "primaryKey": "id"})).await;
    let patched = http
        .patch(format!("{node_url}/indexes/f/settings"))
        .bearer_auth(NODE_KEY)
        .json(&settings)
        .send()
        .await
        .expect("answer");
    assert_eq!(patched.status().as_u16(), 202);
    let (_, last) = post(&http, &node_url, NODE_KEY, "/indexes/f/documents", docs.clone()).await;
    let uid = last["taskUid"].as_u64().expect("uid");
    for _ in 0..600 {
        if one.node_get(0, &format!("/tasks/{uid}")).await.1["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for body in
        [json!({}), json!({"offset": 1, "limit": 2}), json!({"limit": "x"}), json!({"colour": 1})]
    {
        let (status, on_node) =
            post(&http, &node_url, NODE_KEY, "/indexes/f/fields", body.clone()).await;
        let through = cluster.send_json("POST", "/indexes/f/fields", &body).await;
        assert_eq!((through.status, &through.body), (status, &on_node), "{body}");
    }
    let (_, all) = post(&http, &node_url, NODE_KEY, "/indexes/f/fields", json!({})).await;
    let names: Vec<&str> = all["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["id", "kind", "rank", "title", "rare"]);
    assert_eq!(all["results"][1]["filterable"]["enabled"], true);
    assert_eq!(all["results"][2]["rankingRule"], json!({"enabled": true, "order": "desc"}));
    let missing = cluster.send_json("POST", "/indexes/nothing/fields", &json!({})).await;
    let (status, on_node) =
        post(&http, &node_url, NODE_KEY, "/indexes/nothing/fields", json!({})).await;
    assert_eq!((missing.status, &missing.body), (status, &on_node));
}
