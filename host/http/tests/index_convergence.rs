//! Index creation converges on every node (issue 19, items 5 and the write side of 1), with
//! real development nodes: an index created while a node is down reaches that node (with
//! `_miroir_shard` filterable and the index's settings) within seconds of its return, and a
//! node restarted empty never gets the index auto-created bare by a document write.

mod common;

use std::time::{Duration, Instant};

use common::{products, Cluster, ClusterBuilder};
use serde_json::{json, Value};

/// Whether node `index` holds `uid` with `_miroir_shard` filterable (its own settings).
async fn node_has_bookkeeping(cluster: &Cluster, index: usize, uid: &str) -> (bool, Value) {
    let (status, settings) = cluster.node_get(index, &format!("/indexes/{uid}/settings")).await;
    let filterable = settings["filterableAttributes"].as_array().cloned().unwrap_or_default();
    (status == 200 && filterable.iter().any(|a| a == "_miroir_shard"), settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_index_created_while_a_node_is_down_reaches_it_when_it_returns() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).health_probes().start().await;
    let addr = cluster.nodes[0].as_ref().expect("running").addr();
    cluster.stop_node_until_down(0).await;

    let create = cluster
        .send_json("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    assert_eq!(create.status, 202, "another group holds every shard: {:?}", create.body);
    let task = cluster.wait_task(create.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let task = cluster
        .send_and_wait(
            "PATCH",
            "/indexes/products/settings",
            &json!({"filterableAttributes": ["brand"]}),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");

    // The node comes back on an empty disk, on its port.
    cluster.start_node_empty_at(0, addr);
    let deadline = Instant::now() + Duration::from_secs(8);
    let settings = loop {
        let (converged, settings) = node_has_bookkeeping(&cluster, 0, "products").await;
        if converged {
            break settings;
        }
        assert!(Instant::now() < deadline, "the node never got the index: {settings}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let filterable: Vec<&str> = settings["filterableAttributes"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(filterable.contains(&"brand"), "the index's own settings too: {settings}");
    let (_, index) = cluster.node_get(0, "/indexes/products").await;
    assert_eq!(index["primaryKey"], "id", "{index}");

    let documents = products()[..300].to_vec();
    let task =
        cluster.send_and_wait("POST", "/indexes/products/documents", &Value::from(documents)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    for attempt in 0..6 {
        let search = cluster
            .send_json(
                "POST",
                "/indexes/products/search",
                &json!({"q": "", "filter": "brand EXISTS"}),
            )
            .await;
        assert_eq!(search.status, 200, "attempt {attempt}: {:?}", search.body);
        assert!(search.headers.get("x-miroir-degraded").is_none(), "attempt {attempt}");
        assert_eq!(search.body["estimatedTotalHits"], 300, "attempt {attempt}");
        let browse = cluster.get("/indexes/products/documents?limit=5").await;
        assert_eq!(browse.status, 200, "browse {attempt}: {:?}", browse.body);
        assert!(browse.headers.get("x-miroir-degraded").is_none(), "browse {attempt}");
        assert_eq!(browse.body["total"], 300, "browse {attempt}");
    }
    let stale = cluster.state.stale().answers();
    assert!(stale.is_empty(), "no node ever answered stale: {stale:?}");
    let held = cluster.state.stale().stale_indexes();
    assert!(held.is_empty(), "the node missed no document, it is read: {held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_to_a_node_restarted_empty_never_creates_the_index_bare() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    let task = cluster
        .send_and_wait(
            "POST",
            "/indexes/products/documents",
            &Value::from(products()[..200].to_vec()),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");

    cluster.restart_node_empty(1);
    let task = cluster
        .send_and_wait(
            "POST",
            "/indexes/products/documents",
            &Value::from(products()[200..260].to_vec()),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let (converged, settings) = node_has_bookkeeping(&cluster, 1, "products").await;
    assert!(converged, "the node holds the index with Miroir's settings: {settings}");

    // The node lost 200 documents' worth of its shards: reads go to the other group.
    for attempt in 0..6 {
        let search = cluster.send_json("POST", "/indexes/products/search", &json!({"q": ""})).await;
        assert_eq!(search.status, 200, "attempt {attempt}: {:?}", search.body);
        assert!(search.headers.get("x-miroir-degraded").is_none(), "attempt {attempt}");
        assert_eq!(search.body["estimatedTotalHits"], 260, "attempt {attempt}");
    }
}

/// Two groups of two, RF 1: node 2 is down while a first write creates `books` with 100
/// products, then comes back empty on its port and gets the index with Miroir's settings.
async fn books_written_while_node_2_was_down() -> Cluster {
    let mut cluster = ClusterBuilder::new(2, 2, 1).health_probes().start().await;
    let addr = cluster.nodes[2].as_ref().expect("running").addr();
    cluster.stop_node_until_down(2).await;
    let write = cluster
        .send_json("POST", "/indexes/books/documents", &Value::from(products()[..100].to_vec()))
        .await;
    assert_eq!(write.status, 202, "{:?}", write.body);
    let task = cluster.wait_task(write.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    cluster.start_node_empty_at(2, addr);
    wait_bookkeeping(&cluster, 2, "books").await;
    cluster
}

/// Polls until node `index` holds `uid` with the bookkeeping settings (at most 8 s).
async fn wait_bookkeeping(cluster: &Cluster, index: usize, uid: &str) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let (converged, settings) = node_has_bookkeeping(cluster, index, uid).await;
        if converged {
            return;
        }
        assert!(Instant::now() < deadline, "node {index} never got `{uid}`: {settings}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_index_a_first_write_created_while_a_node_was_down_reaches_it() {
    let cluster = books_written_while_node_2_was_down().await;
    let (_, index) = cluster.node_get(2, "/indexes/books").await;
    assert_eq!(index["primaryKey"], "id", "{index}");
    // It missed the first write's documents: read around until refilled, never partial.
    assert!(cluster.state.stale().is_held(&cluster.node_ids[2], "books"));
    for attempt in 0..6 {
        let search = cluster.send_json("POST", "/indexes/books/search", &json!({"q": ""})).await;
        assert_eq!(search.status, 200, "attempt {attempt}: {:?}", search.body);
        assert!(search.headers.get("x-miroir-degraded").is_none(), "attempt {attempt}");
        assert_eq!(search.body["estimatedTotalHits"], 100, "attempt {attempt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_drift_check_creates_an_index_a_node_lost_and_reads_go_around_it() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).start().await;
    cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    let task = cluster
        .send_and_wait(
            "POST",
            "/indexes/products/documents",
            &Value::from(products()[..200].to_vec()),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    cluster.restart_node_empty(3);
    let drift = miroir_http::settings::drift::check_and_repair(&cluster.state).await;
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0].repaired, vec![cluster.node_ids[3].clone()], "{drift:?}");
    let (converged, settings) = node_has_bookkeeping(&cluster, 3, "products").await;
    assert!(converged, "{settings}");
    for attempt in 0..6 {
        let search = cluster.send_json("POST", "/indexes/products/search", &json!({"q": ""})).await;
        assert_eq!(search.status, 200, "attempt {attempt}: {:?}", search.body);
        assert!(search.headers.get("x-miroir-degraded").is_none(), "attempt {attempt}");
        assert_eq!(search.body["estimatedTotalHits"], 200, "attempt {attempt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_one_instance_holds_stale_is_read_around_by_every_instance() {
    let cluster = books_written_while_node_2_was_down().await;
    let node = &cluster.node_ids[2];
    assert!(cluster.state.stale().is_held(node, "books"));

    // A second instance on the same store learns the hold at its next prober round.
    let (second, state, _server) = common::serve(&cluster.config, &cluster.store_dir).await;
    miroir_http::convergence::sync_holds(&state).await;
    assert!(state.stale().is_held(node, "books"), "the hold is shared through the store");
    let http = reqwest::Client::new();
    for attempt in 0..6 {
        let search: Value = http
            .post(format!("http://{second}/indexes/books/search"))
            .json(&json!({"q": ""}))
            .send()
            .await
            .expect("the second instance answers")
            .json()
            .await
            .expect("json");
        assert_eq!(search["estimatedTotalHits"], 100, "attempt {attempt}: {search}");
    }

    // Deleting the index ends the hold everywhere.
    cluster.send_and_wait("DELETE", "/indexes/books", &Value::Null).await;
    miroir_http::convergence::sync_holds(&state).await;
    assert!(!state.stale().is_held(node, "books"));
    assert!(!cluster.state.stale().is_held(node, "books"));
}
