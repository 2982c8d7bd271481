//! Searches when nodes fail: a slow node is replaced by another replica of its shards, a node
//! that is gone by another group, and a shard with no replica left gives a partial answer with
//! `X-Miroir-Degraded` (policy `partial`) or 503 `miroir_shard_unavailable` (policy `error`).
//! The health prober takes a stopped node `down`, and writes and searches then skip it. Document
//! browsing fails over the same way.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{load_products, products, Cluster, ClusterBuilder};
use miroir_cluster::{shard_of, HealthState};
use miroir_config::{HumanDuration, UnavailableShardPolicy};
use serde_json::{json, Value};

/// The number of shards the harness gives every index.
const SHARDS: u32 = 64;

/// The ids of a search answer's hits, in order.
fn ids(answer: &Value) -> Vec<String> {
    answer["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A search every test sends: sorted so the expected hits are known from the documents alone.
fn sorted_search() -> Value {
    json!({"q": "", "sort": ["price:asc"], "limit": 40, "facets": ["brand"]})
}

/// The ids of `documents` the sorted search returns, when only those documents exist.
fn expected_ids(documents: &[&Value]) -> Vec<String> {
    let mut sorted: Vec<&&Value> = documents.iter().collect();
    sorted.sort_by(|a, b| {
        let (pa, pb) = (a["price"].as_f64().expect("price"), b["price"].as_f64().expect("price"));
        pa.total_cmp(&pb).then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    sorted.iter().take(40).map(|d| d["id"].as_str().expect("id").to_owned()).collect()
}

fn degraded(answer: &common::Answer) -> Option<String> {
    answer.headers.get("x-miroir-degraded").map(|v| v.to_str().expect("ascii").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_slower_than_its_timeout_is_replaced_by_a_replica() {
    // One group, two nodes, RF 2: both nodes hold every shard and a covering set is one node,
    // alternating between the two, so half of the searches start on the slow node.
    let cluster = ClusterBuilder::new(1, 2, 2)
        .configure(|config| config.scatter.node_timeout = HumanDuration::from_millis(500))
        .start()
        .await;
    let documents = load_products(&cluster, 300).await;
    let all: Vec<&Value> = documents.iter().collect();
    let fast = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
    assert_eq!(fast.status, 200, "{:?}", fast.body);
    assert_eq!(ids(&fast.body), expected_ids(&all));

    cluster.nodes[1].as_ref().expect("node 1").set_search_delay(Duration::from_secs(3));
    for attempt in 0..4 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
        assert_eq!(answer.status, 200, "attempt {attempt}: {:?}", answer.body);
        assert_eq!(degraded(&answer), None, "attempt {attempt}: the replica answered in time");
        assert_eq!(ids(&answer.body), ids(&fast.body), "attempt {attempt}");
        assert_eq!(answer.body["estimatedTotalHits"], 300, "attempt {attempt}");
        assert_eq!(
            answer.body["facetDistribution"], fast.body["facetDistribution"],
            "attempt {attempt}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_is_replaced_by_its_replica_in_another_group() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).start().await;
    let documents = load_products(&cluster, 300).await;
    let all: Vec<&Value> = documents.iter().collect();
    cluster.stop_node(0);
    for attempt in 0..4 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
        assert_eq!(answer.status, 200, "attempt {attempt}: {:?}", answer.body);
        assert_eq!(degraded(&answer), None, "attempt {attempt}: group g1 holds every shard");
        assert_eq!(ids(&answer.body), expected_ids(&all), "attempt {attempt}");
        assert_eq!(answer.body["estimatedTotalHits"], 300);
    }
}

/// A one-group RF 1 cluster where node 1, the only owner of its shards, is stopped; returns the
/// cluster, the documents still reachable and the shards lost.
async fn cluster_missing_a_node(
    policy: UnavailableShardPolicy,
) -> (Cluster, Vec<Value>, BTreeSet<u32>) {
    let mut cluster = ClusterBuilder::new(1, 3, 1)
        .configure(move |config| config.scatter.unavailable_shard_policy = policy)
        .start()
        .await;
    let documents = load_products(&cluster, 300).await;
    let lost: BTreeSet<u32> = cluster
        .state
        .assignment(SHARDS)
        .shards_of(&cluster.node_ids[1])
        .into_iter()
        .map(|s| s.get())
        .collect();
    cluster.stop_node(1);
    let reachable = documents
        .into_iter()
        .filter(|d| !lost.contains(&shard_of(d["id"].as_str().expect("id"), SHARDS).get()))
        .collect();
    (cluster, reachable, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_without_replicas_gives_a_partial_answer_that_says_so() {
    let (cluster, reachable, lost) = cluster_missing_a_node(UnavailableShardPolicy::Partial).await;
    assert!(reachable.len() < 300 && !reachable.is_empty());
    let answer = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let listed = degraded(&answer).expect("X-Miroir-Degraded");
    let shards: BTreeSet<u32> = listed
        .strip_prefix("shards=")
        .expect("shards=...")
        .split(',')
        .map(|s| s.parse().expect("a shard number"))
        .collect();
    assert_eq!(shards, lost);
    let still: Vec<&Value> = reachable.iter().collect();
    assert_eq!(ids(&answer.body), expected_ids(&still));
    assert_eq!(answer.body["estimatedTotalHits"], reachable.len());

    let facets = cluster
        .send_json("POST", "/indexes/products/facet-search", &json!({"facetName": "brand"}))
        .await;
    assert_eq!(facets.status, 200, "{:?}", facets.body);
    assert!(degraded(&facets).is_some(), "facet search is partial too");
    let counted: u64 = facets.body["facetHits"]
        .as_array()
        .expect("facetHits")
        .iter()
        .map(|h| h["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, reachable.len() as u64, "only reachable documents are counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_without_replicas_is_an_error_under_the_error_policy() {
    let (cluster, _, lost) = cluster_missing_a_node(UnavailableShardPolicy::Error).await;
    let answer = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.body["code"], "miroir_shard_unavailable");
    assert_eq!(answer.body["type"], "system");
    assert!(answer.body["link"].as_str().is_some_and(|l| l.contains("miroir_shard_unavailable")));
    assert!(
        answer.body["message"].as_str().unwrap().contains(&format!("{} shard(s)", lost.len())),
        "{:?}",
        answer.body
    );
    let get = cluster.get("/indexes/products/search?q=phone").await;
    assert_eq!(get.status, 503, "GET search too: {:?}", get.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_prober_takes_a_stopped_node_down_and_requests_skip_it() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).health_probes().start().await;
    let documents = load_products(&cluster, 200).await;
    let stopped = cluster.node_ids[2].clone();
    assert_eq!(cluster.state.health().state(&stopped), HealthState::Healthy);
    cluster.stop_node_until_down(2).await;
    let others = cluster.state.health().snapshot();
    assert_eq!(others.values().filter(|s| **s == HealthState::Healthy).count(), 3, "{others:?}");

    // Searches go to the group whose nodes are all up.
    let all: Vec<&Value> = documents.iter().collect();
    for attempt in 0..4 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
        assert_eq!(answer.status, 200, "attempt {attempt}: {:?}", answer.body);
        assert_eq!(degraded(&answer), None);
        assert_eq!(ids(&answer.body), expected_ids(&all));
    }
    // A write skips the down node: g0 still takes it, g1 is reported degraded.
    let more = products()[200..260].to_vec();
    let write = cluster.send_json("POST", "/indexes/products/documents", &Value::from(more)).await;
    assert_eq!(write.status, 202, "{:?}", write.body);
    assert_eq!(degraded(&write).as_deref(), Some("groups=g1"));
    let task = cluster.wait_task(write.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let answer = cluster.send_json("POST", "/indexes/products/search", &json!({"q": ""})).await;
    assert_eq!(answer.body["estimatedTotalHits"], 260, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_is_replaced_by_a_replica_already_answering_other_shards() {
    // One group of three at RF 2: the covering set asks every node, so the replica of a
    // stopped node's shards is a node that is already answering for its own.
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    let documents = load_products(&cluster, 300).await;
    let all: Vec<&Value> = documents.iter().collect();
    cluster.stop_node(1);
    for attempt in 0..6 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &sorted_search()).await;
        assert_eq!(answer.status, 200, "attempt {attempt}: {:?}", answer.body);
        assert_eq!(degraded(&answer), None, "attempt {attempt}: RF 2 covers every shard");
        assert_eq!(ids(&answer.body), expected_ids(&all), "attempt {attempt}");
        assert_eq!(answer.body["estimatedTotalHits"], 300);
    }
}

/// Every id a browse returns, page by page (`limit` 70), with the `total` it reports.
async fn browse_all(cluster: &Cluster) -> (BTreeSet<String>, u64, Option<String>) {
    let mut ids = BTreeSet::new();
    let (mut total, mut header) = (0, None);
    for offset in (0..300).step_by(70) {
        let page =
            cluster.get(&format!("/indexes/products/documents?offset={offset}&limit=70")).await;
        assert_eq!(page.status, 200, "{:?}", page.body);
        total = page.body["total"].as_u64().expect("total");
        header = degraded(&page);
        for doc in page.body["results"].as_array().expect("results") {
            assert!(ids.insert(doc["id"].as_str().expect("id").to_owned()), "{doc} twice");
        }
    }
    (ids, total, header)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browsing_survives_a_stopped_node_and_says_what_is_missing() {
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    load_products(&cluster, 300).await;
    cluster.stop_node(0);
    let (ids, total, header) = browse_all(&cluster).await;
    assert_eq!((ids.len(), total, header), (300, 300, None), "RF 2 holds every shard twice");

    let (cluster, reachable, lost) = cluster_missing_a_node(UnavailableShardPolicy::Partial).await;
    let (ids, total, header) = browse_all(&cluster).await;
    let expected: BTreeSet<String> =
        reachable.iter().map(|d| d["id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids, expected);
    assert_eq!(total, reachable.len() as u64);
    let listed: BTreeSet<u32> = header
        .expect("X-Miroir-Degraded")
        .strip_prefix("shards=")
        .expect("shards=")
        .split(',')
        .map(|s| s.parse().expect("shard"))
        .collect();
    assert_eq!(listed, lost);
}
