//! A node whose settings changed behind Miroir's back is found by the drift check and given the
//! settings the other nodes hold; without a majority nothing is overwritten.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, ClusterBuilder, NODE_KEY};
use miroir_http::settings::drift::check_and_repair;
use serde_json::{json, Value};

/// Sends a settings patch straight to node `index`, as an operator bypassing Miroir would, and
/// waits until that node applied it.
async fn patch_node_directly(cluster: &Cluster, index: usize, patch: &Value) {
    let node = cluster.nodes[index].as_ref().expect("node running");
    let answer: Value = cluster
        .http
        .patch(format!("{}/indexes/books/settings", node.url()))
        .bearer_auth(NODE_KEY)
        .json(patch)
        .send()
        .await
        .expect("node answers")
        .json()
        .await
        .expect("json");
    let uid = answer["taskUid"].as_u64().expect("a node task");
    wait_node_task(cluster, index, uid).await;
}

async fn wait_node_task(cluster: &Cluster, index: usize, uid: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, task) = cluster.node_get(index, &format!("/tasks/{uid}")).await;
        if task["status"] == "succeeded" {
            return;
        }
        assert!(task["status"] != "failed", "node task failed: {task}");
        assert!(Instant::now() < deadline, "node task {uid} did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every node's settings of `books`.
async fn node_settings(cluster: &Cluster) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..cluster.nodes.len() {
        out.push(cluster.node_get(i, "/indexes/books/settings").await.1);
    }
    out
}

/// Waits until every node holds the same settings (the repair is a node task).
async fn wait_converged(cluster: &Cluster) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = node_settings(cluster).await;
        if all.windows(2).all(|w| w[0] == w[1]) {
            return all;
        }
        assert!(Instant::now() < deadline, "settings never converged: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_out_of_band_change_is_repaired_from_the_majority() {
    let cluster = ClusterBuilder::new(1, 3, 1).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    let task = cluster
        .send_and_wait(
            "PATCH",
            "/indexes/books/settings",
            &json!({"searchableAttributes": ["title", "author"], "synonyms": {"sf": ["science fiction"]}}),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let before = node_settings(&cluster).await;
    assert!(check_and_repair(&cluster.state).await.is_empty(), "no drift yet");

    patch_node_directly(&cluster, 2, &json!({"synonyms": {}, "rankingRules": ["sort", "words"]}))
        .await;
    let drifted = node_settings(&cluster).await;
    assert_ne!(drifted[2], before[2], "the out-of-band change landed");

    let report = check_and_repair(&cluster.state).await;
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].index, "books");
    assert_eq!(report[0].repaired, vec![cluster.node_ids[2].clone()]);
    assert_eq!(report[0].unresolved, None);
    let after = wait_converged(&cluster).await;
    assert_eq!(after, before, "node 2 holds the majority's settings again");
    assert!(check_and_repair(&cluster.state).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_majority_nothing_is_overwritten() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    patch_node_directly(&cluster, 1, &json!({"stopWords": ["the"]})).await;
    let split = node_settings(&cluster).await;
    let report = check_and_repair(&cluster.state).await;
    assert_eq!(report.len(), 1);
    assert!(report[0].repaired.is_empty());
    assert!(report[0].unresolved.is_some());
    assert_eq!(node_settings(&cluster).await, split, "neither node was overwritten");
}
