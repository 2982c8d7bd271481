//! Nodes that stop in the middle of a sequence of writes: a group that keeps quorum (or another
//! group) keeps the write acknowledged and reported degraded; with no group at quorum the write
//! is refused with `miroir_no_quorum`; nothing acknowledged goes missing.
//!
//! Quorum is `floor(RF/2)+1` (SPEC §3): 2 of 2 with RF 2, so a group of RF 2 that lost an owner
//! of a shard misses quorum for it, and the write then needs a second group.

mod common;

use common::{load_products, products, ClusterBuilder};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf2_write_succeeds_degraded_and_loses_nothing_when_a_node_stops() {
    let mut cluster = ClusterBuilder::new(2, 3, 2).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    let all = products();
    let first = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[..300].to_vec()))
        .await;
    assert_eq!(first.status, 202);
    let first_task = cluster.wait_task(first.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(first_task["status"], "succeeded");

    cluster.stop_node(1);
    let second = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[300..600].to_vec()))
        .await;
    assert_eq!(second.status, 202, "{:?}", second.body);
    assert_eq!(
        second.headers.get("x-miroir-degraded").and_then(|v| v.to_str().ok()),
        Some("groups=g0")
    );
    let task = cluster.wait_task(second.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["details"]["indexedDocuments"], 300);

    for document in &all[..600] {
        let id = document["id"].as_str().expect("id");
        let got = cluster.get(&format!("/indexes/products/documents/{id}")).await;
        assert_eq!(got.status, 200, "acknowledged document {id} is missing: {:?}", got.body);
        assert_eq!(&got.body, document);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_fails_without_quorum_when_rf1_and_one_group() {
    let mut cluster = ClusterBuilder::new(1, 3, 1).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    cluster.stop_node(2);
    let all = products();
    let answer = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[..200].to_vec()))
        .await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.body["code"], "miroir_no_quorum");
    assert_eq!(answer.body["type"], "system");
    assert_eq!(answer.body["link"], "https://docs.meilisearch.com/errors#miroir_no_quorum");
    // No task was acknowledged for the refused write.
    let tasks = cluster.get("/tasks?types=documentAdditionOrUpdate").await;
    assert_eq!(tasks.body["total"], 0, "{:?}", tasks.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_group_saves_the_write_when_rf1() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    cluster.stop_node(3);
    let all = products();
    let answer = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[..200].to_vec()))
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(
        answer.headers.get("x-miroir-degraded").and_then(|v| v.to_str().ok()),
        Some("groups=g1")
    );
    let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    for document in &all[..200] {
        let id = document["id"].as_str().expect("id");
        assert_eq!(
            cluster.get(&format!("/indexes/products/documents/{id}")).await.status,
            200,
            "{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf2_in_a_single_group_with_majority_quorum_needs_both_owners() {
    let mut cluster = ClusterBuilder::new(1, 3, 2)
        .configure(|config| config.write_quorum = miroir_config::WriteQuorum::Majority)
        .start()
        .await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    cluster.stop_node(0);
    let all = products();
    let answer = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[..200].to_vec()))
        .await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.body["code"], "miroir_no_quorum");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_quorum_all_refuses_a_write_with_an_owner_down_and_leaves_nothing() {
    let mut cluster = ClusterBuilder::new(1, 3, 2)
        .configure(|config| config.write_quorum = miroir_config::WriteQuorum::All)
        .start()
        .await;
    load_products(&cluster, 100).await;
    cluster.stop_node(0);
    let all = products();
    let answer = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[100..300].to_vec()))
        .await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.body["code"], "miroir_no_quorum");
    for node in 1..3 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, tasks) =
                cluster.node_get(node, "/tasks?statuses=enqueued,processing&limit=1").await;
            assert_eq!(status, 200);
            if tasks["results"].as_array().is_some_and(Vec::is_empty) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node {node} stays busy");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for document in &all[100..300] {
            let id = document["id"].as_str().expect("id");
            let (status, _) =
                cluster.node_get(node, &format!("/indexes/products/documents/{id}")).await;
            assert_eq!(status, 404, "{id} left on node {node}");
        }
    }
    let browse = cluster.get("/indexes/products/documents?limit=1").await;
    assert_eq!(browse.body["total"], 100, "{:?}", browse.body);
    assert!(miroir_http::repairs::pairs(&cluster.state).await.expect("store").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf2_with_quorum_one_acknowledges_with_an_owner_down_and_records_its_repair() {
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    load_products(&cluster, 100).await;
    cluster.stop_node(0);
    let all = products();
    let answer = cluster
        .send_json("POST", "/indexes/products/documents", &Value::from(all[100..300].to_vec()))
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(
        answer.headers.get("x-miroir-degraded").and_then(|v| v.to_str().ok()),
        Some("groups=g0")
    );
    // The task maps to the node tasks that were created: it finishes (never stays processing).
    let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let down = cluster.node_ids[0].clone();
    let record = miroir_http::repairs::get(&cluster.state, &down, "products")
        .await
        .expect("store")
        .expect("a repair record for the node that missed the write");
    let owned: std::collections::BTreeSet<u32> = cluster
        .state
        .assignment(64)
        .shards_of(&down)
        .into_iter()
        .map(|s| s.get())
        .filter(|s| {
            all[100..300]
                .iter()
                .any(|d| miroir_cluster::shard_of(d["id"].as_str().expect("id"), 64).get() == *s)
        })
        .collect();
    assert_eq!(record.shards, owned);
    assert_eq!(record.generation, 1);
    assert!(cluster.state.stale().is_held(&down, "products"));
    // A deletion the node misses merges into the same record.
    let gone = all[0]["id"].as_str().expect("id");
    let answer =
        cluster.send_json("POST", "/indexes/products/documents/delete-batch", &json!([gone])).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let record = miroir_http::repairs::get(&cluster.state, &down, "products")
        .await
        .expect("store")
        .expect("record");
    let missed_by_down =
        cluster.state.assignment(64).shards_of(&down).contains(&miroir_cluster::shard_of(gone, 64));
    assert_eq!(record.generation, if missed_by_down { 2 } else { 1 });
    // Every document is read from the owners that took it.
    for document in &all[..300] {
        let id = document["id"].as_str().expect("id");
        if id == gone {
            continue;
        }
        let answer = cluster.get(&format!("/indexes/products/documents/{id}")).await;
        assert_eq!(answer.status, 200, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_to_one_index_all_land() {
    let cluster = ClusterBuilder::new(1, 3, 2).start().await;
    let all = products();
    let writes = all[..1000].chunks(100).map(|chunk| {
        let cluster = &cluster;
        async move {
            let answer = cluster
                .send_json("POST", "/indexes/products/documents", &Value::from(chunk.to_vec()))
                .await;
            assert_eq!(answer.status, 202, "{:?}", answer.body);
            answer.body["taskUid"].as_u64().expect("uid")
        }
    });
    let uids = futures_util::future::join_all(writes).await;
    for uid in uids {
        assert_eq!(cluster.wait_task(uid).await["status"], "succeeded");
    }
    assert_eq!(cluster.get("/indexes/products").await.body["primaryKey"], "id");
    for document in &all[..1000] {
        let id = document["id"].as_str().expect("id");
        let got = cluster.get(&format!("/indexes/products/documents/{id}")).await;
        assert_eq!(&got.body, document, "{id}");
    }
    let (_, settings) = cluster.node_get(0, "/indexes/products/settings").await;
    assert_eq!(settings["filterableAttributes"], json!(["_miroir_shard"]));
}
