//! Reads while a node is stale or slow (issue 19, items 1, 2, 6 and part of 11), with real
//! development nodes: a node restarted empty on its port answers `index_not_found` (or, once a
//! write recreated the index without Miroir's bookkeeping, refuses the shard filter). Those
//! answers never reach the client: the shards are read from another replica or group, else the
//! answer says what it lacks (`X-Miroir-Degraded`). Get by id asks every owner. Readiness and
//! the topology show the stale replica. A busy node is slow, not down. A client's filter or
//! facets naming `_miroir_shard` get the error one node gives.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{load_products, products, Answer, Cluster, ClusterBuilder};
use miroir_cluster::{shard_of, HealthState};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

/// The number of shards the harness gives every index.
const SHARDS: u32 = 64;

fn degraded(answer: &Answer) -> Option<String> {
    answer.headers.get("x-miroir-degraded").map(|v| v.to_str().expect("ascii").to_owned())
}

/// The shards listed by `X-Miroir-Degraded: shards=...`.
fn degraded_shards(answer: &Answer) -> BTreeSet<u32> {
    degraded(answer)
        .expect("X-Miroir-Degraded")
        .strip_prefix("shards=")
        .expect("shards=...")
        .split(',')
        .map(|s| s.parse().expect("a shard number"))
        .collect()
}

fn search() -> Value {
    json!({"q": "", "sort": ["price:asc"], "limit": 30, "facets": ["brand"]})
}

/// Searches, facet searches and a browse all count `expected` documents, with no error and no
/// degraded header. Index stats sum one group's nodes: they count `expected` when a group
/// without a stale node is left (`stats_group_left`), else they are refused with
/// `miroir_shard_unavailable` (never a node's 404).
async fn every_read_counts(cluster: &Cluster, expected: usize, stats_group_left: bool, what: &str) {
    for attempt in 0..6 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &search()).await;
        assert_eq!(answer.status, 200, "{what}, attempt {attempt}: {:?}", answer.body);
        assert_eq!(degraded(&answer), None, "{what}, attempt {attempt}");
        assert_eq!(answer.body["estimatedTotalHits"], expected, "{what}, attempt {attempt}");
        let brands: u64 = answer.body["facetDistribution"]["brand"]
            .as_object()
            .expect("brand counts")
            .values()
            .map(|c| c.as_u64().expect("count"))
            .sum();
        assert_eq!(brands, expected as u64, "{what}, attempt {attempt}: facet counts");

        let get = cluster.get("/indexes/products/search?q=&limit=5").await;
        assert_eq!(get.status, 200, "{what}, GET attempt {attempt}: {:?}", get.body);
        assert_eq!(get.body["estimatedTotalHits"], expected, "{what}, GET attempt {attempt}");

        let facets = cluster
            .send_json("POST", "/indexes/products/facet-search", &json!({"facetName": "brand"}))
            .await;
        assert_eq!(facets.status, 200, "{what}, facet search {attempt}: {:?}", facets.body);
        assert_eq!(degraded(&facets), None, "{what}, facet search {attempt}");
        let counted: u64 = facets.body["facetHits"]
            .as_array()
            .expect("facetHits")
            .iter()
            .map(|h| h["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(counted, expected as u64, "{what}, facet search {attempt}");

        let browse = cluster.get("/indexes/products/documents?limit=5").await;
        assert_eq!(browse.status, 200, "{what}, browse {attempt}: {:?}", browse.body);
        assert_eq!(degraded(&browse), None, "{what}, browse {attempt}");
        assert_eq!(browse.body["total"], expected, "{what}, browse {attempt}");
    }
    let stats = cluster.get("/indexes/products/stats").await;
    if stats_group_left {
        assert_eq!(stats.status, 200, "{what}, stats: {:?}", stats.body);
        assert_eq!(stats.body["numberOfDocuments"], expected, "{what}, stats");
    } else {
        assert_eq!(stats.status, 503, "{what}, stats: {:?}", stats.body);
        assert_eq!(stats.body["code"], "miroir_shard_unavailable", "{what}, stats");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_restarted_empty_at_rf2_never_turns_into_404_400_or_missing_hits() {
    // One group of three at RF 2: every search asks each node for part of its shards, with the
    // shard filter.
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    load_products(&cluster, 300).await;
    cluster.restart_node_empty(1);
    every_read_counts(&cluster, 300, false, "before any write reached the emptied node").await;

    // A write recreates the index on the emptied node without Miroir's bookkeeping setting: it
    // now refuses the shard filter.
    let more = products()[300..360].to_vec();
    let write = cluster.send_json("POST", "/indexes/products/documents", &Value::from(more)).await;
    assert_eq!(write.status, 202, "{:?}", write.body);
    let task = cluster.wait_task(write.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let (status, node_index) = cluster.node_get(1, "/indexes/products/settings").await;
    assert_eq!(status, 200, "the write recreated the index on the node: {node_index}");
    every_read_counts(&cluster, 360, false, "after a write recreated the index").await;

    let stale = cluster.state.stale().answers();
    assert!(stale.get(&cluster.node_ids[1]).is_some_and(|n| *n > 0), "counted: {stale:?}");
    assert_eq!(stale.len(), 1, "only the emptied node is stale: {stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_groups_at_rf1_read_the_other_group_or_say_what_is_missing() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).start().await;
    let documents = load_products(&cluster, 300).await;
    cluster.restart_node_empty(0);
    every_read_counts(&cluster, 300, true, "g1 holds every shard").await;

    // g1's other node stops too: the shards both lost have no replica left.
    let assignment = cluster.state.assignment(SHARDS);
    let emptied: BTreeSet<u32> =
        assignment.shards_of(&cluster.node_ids[0]).into_iter().map(|s| s.get()).collect();
    let stopped: BTreeSet<u32> =
        assignment.shards_of(&cluster.node_ids[3]).into_iter().map(|s| s.get()).collect();
    let lost: BTreeSet<u32> = emptied.intersection(&stopped).copied().collect();
    assert!(!lost.is_empty(), "the two nodes share shards");
    let reachable = documents
        .iter()
        .filter(|d| !lost.contains(&shard_of(d["id"].as_str().expect("id"), SHARDS).get()))
        .count();
    cluster.stop_node(3);
    for attempt in 0..6 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &search()).await;
        assert_eq!(answer.status, 200, "attempt {attempt}: {:?}", answer.body);
        assert_eq!(degraded_shards(&answer), lost, "attempt {attempt}: never a silent partial");
        assert_eq!(answer.body["estimatedTotalHits"], reachable, "attempt {attempt}");
    }
    let browse = cluster.get("/indexes/products/documents?limit=5").await;
    assert_eq!(browse.status, 200, "{:?}", browse.body);
    assert_eq!(degraded_shards(&browse), lost);
    assert_eq!(browse.body["total"], reachable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_emptied_only_replica_is_an_error_under_the_error_policy() {
    let mut cluster = ClusterBuilder::new(1, 2, 1)
        .configure(|config| {
            config.scatter.unavailable_shard_policy = miroir_config::UnavailableShardPolicy::Error
        })
        .start()
        .await;
    load_products(&cluster, 200).await;
    cluster.restart_node_empty(1);
    for attempt in 0..3 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &search()).await;
        assert_eq!(answer.status, 503, "attempt {attempt}: {:?}", answer.body);
        assert_eq!(answer.body["code"], "miroir_shard_unavailable", "attempt {attempt}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_by_id_asks_every_owner_before_answering_not_found() {
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    let documents = load_products(&cluster, 300).await;
    cluster.restart_node_empty(1);
    let assignment = cluster.state.assignment(SHARDS);
    let on_emptied: BTreeSet<u32> =
        assignment.shards_of(&cluster.node_ids[1]).into_iter().map(|s| s.get()).collect();
    let mut checked = 0;
    for document in &documents {
        let id = document["id"].as_str().expect("id");
        if !on_emptied.contains(&shard_of(id, SHARDS).get()) {
            continue;
        }
        let answer = cluster.get(&format!("/indexes/products/documents/{id}")).await;
        assert_eq!(answer.status, 200, "{id}: {:?}", answer.body);
        assert_eq!(answer.body["id"], id);
        assert!(answer.body.get("_miroir_shard").is_none(), "{:?}", answer.body);
        checked += 1;
    }
    assert!(checked > 50, "{checked} documents live on the emptied node");

    // A document no owner holds is `document_not_found`, as one node says it.
    let missing = cluster.get("/indexes/products/documents/no-such-document").await;
    assert_eq!(missing.status, 404, "{:?}", missing.body);
    assert_eq!(missing.body["code"], "document_not_found");
    assert_eq!(missing.body["message"], "Document `no-such-document` not found.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_and_topology_show_stale_replicas() {
    // RF 2: the stale node's shards have another owner, so Miroir stays ready.
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    load_products(&cluster, 100).await;
    cluster.restart_node_empty(2);
    let answer = cluster.send_json("POST", "/indexes/products/search", &search()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let stale_node = cluster.node_ids[2].to_string();
    let ready = cluster.get("/_miroir/ready").await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["staleReplicas"], json!({stale_node.as_str(): ["products"]}));
    let topology = cluster.get("/_miroir/topology").await;
    assert_eq!(topology.status, 200, "{:?}", topology.body);
    for node in topology.body["groups"][0]["nodes"].as_array().expect("nodes") {
        let expected =
            if node["id"] == stale_node.as_str() { json!(["products"]) } else { json!([]) };
        assert_eq!(node["staleIndexes"], expected, "{node}");
    }

    // RF 1: the stale node's shards have no other owner: not ready.
    let mut cluster = ClusterBuilder::new(1, 2, 1).start().await;
    load_products(&cluster, 100).await;
    cluster.restart_node_empty(1);
    let answer = cluster.send_json("POST", "/indexes/products/search", &search()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let lost: BTreeSet<u32> = cluster
        .state
        .assignment(SHARDS)
        .shards_of(&cluster.node_ids[1])
        .into_iter()
        .map(|s| s.get())
        .collect();
    assert_eq!(degraded_shards(&answer), lost);
    let ready = cluster.get("/_miroir/ready").await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    assert_eq!(ready.body["unavailableShards"]["products"], json!(lost));
    assert_eq!(ready.body["staleReplicas"], json!({cluster.node_ids[1].as_str(): ["products"]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_node_is_slow_not_down() {
    // RF 1: taking the busy node down would drop its shards from every search and refuse writes.
    let cluster = ClusterBuilder::new(1, 2, 1).health_probes().start().await;
    load_products(&cluster, 200).await;
    // Every answer of node 1, `/health` included, now takes longer than the probe timeout.
    cluster.nodes[1].as_ref().expect("node 1").set_response_delay(Duration::from_millis(150));
    let busy = cluster.node_ids[1].clone();
    let until = Instant::now() + Duration::from_secs(3);
    let mut searches = 0;
    while Instant::now() < until {
        let answer = cluster.send_json("POST", "/indexes/products/search", &search()).await;
        assert_eq!(answer.status, 200, "search {searches}: {:?}", answer.body);
        assert_eq!(degraded(&answer), None, "search {searches}: no shard dropped");
        assert_eq!(answer.body["estimatedTotalHits"], 200, "search {searches}");
        searches += 1;
    }
    assert_ne!(cluster.state.health().state(&busy), HealthState::Down);
    let more = products()[200..230].to_vec();
    let write = cluster.send_json("POST", "/indexes/products/documents", &Value::from(more)).await;
    assert_eq!(write.status, 202, "{:?}", write.body);
    assert_eq!(degraded(&write), None);

    // Idle, the busy node still passes its probes: their timeout follows its latency.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_ne!(cluster.state.health().state(&busy), HealthState::Down);
}

/// A single node holding `products` with the client's own settings, for the errors one node
/// gives.
async fn reference_node() -> TestNode {
    let node = TestNode::start(Some(common::NODE_KEY));
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", node.url()))
            .bearer_auth(common::NODE_KEY)
            .json(&body)
            .send()
    };
    let steps = [
        (reqwest::Method::POST, "/indexes", json!({"uid": "products", "primaryKey": "id"})),
        (
            reqwest::Method::PATCH,
            "/indexes/products/settings",
            json!({"filterableAttributes": ["brand"], "sortableAttributes": ["price"]}),
        ),
        (
            reqwest::Method::POST,
            "/indexes/products/documents",
            Value::from(products()[..20].to_vec()),
        ),
    ];
    for (method, path, body) in steps {
        let answer = send(method, path, body).await.expect("node answers");
        assert_eq!(answer.status(), 202);
    }
    // Tasks run in order: wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks: Value = http
            .get(format!("{}/tasks?statuses=enqueued,processing", node.url()))
            .bearer_auth(common::NODE_KEY)
            .send()
            .await
            .expect("tasks")
            .json()
            .await
            .expect("json");
        if tasks["results"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        assert!(Instant::now() < deadline, "reference tasks did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node
}

async fn node_answer(
    node: &TestNode,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request =
        http.request(method, format!("{}{path}", node.url())).bearer_auth(common::NODE_KEY);
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request.send().await.expect("node answers");
    (answer.status().as_u16(), answer.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_and_facets_naming_the_shard_field_get_one_nodes_error() {
    let cluster = ClusterBuilder::new(1, 3, 2).start().await;
    load_products(&cluster, 100).await;
    let reference = reference_node().await;
    let searches = [
        json!({"q": "", "filter": "_miroir_shard.s1 EXISTS"}),
        json!({"q": "", "filter": ["brand = Acme", ["_miroir_shard = 3", "price > 10"]]}),
        json!({"q": "", "facets": ["brand", "_miroir_shard"]}),
    ];
    for request in &searches {
        let expected =
            node_answer(&reference, "POST", "/indexes/products/search", Some(request)).await;
        assert_eq!(expected.0, 400, "one node refuses {request}: {:?}", expected.1);
        let answer = cluster.send_json("POST", "/indexes/products/search", request).await;
        assert_eq!((answer.status, answer.body), expected, "{request}");
    }
    let facet = json!({"facetName": "_miroir_shard"});
    let expected =
        node_answer(&reference, "POST", "/indexes/products/facet-search", Some(&facet)).await;
    assert_eq!(expected.0, 400, "{:?}", expected.1);
    let answer = cluster.send_json("POST", "/indexes/products/facet-search", &facet).await;
    assert_eq!((answer.status, answer.body), expected);

    let path = "/indexes/products/documents?filter=_miroir_shard.s2%20EXISTS";
    let expected = node_answer(&reference, "GET", path, None).await;
    assert_eq!(expected.0, 400, "{:?}", expected.1);
    let answer = cluster.get(path).await;
    assert_eq!((answer.status, answer.body), expected);

    // The name inside a value is only a value.
    let value = json!({"q": "", "filter": "brand = '_miroir_shard'"});
    let answer = cluster.send_json("POST", "/indexes/products/search", &value).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["estimatedTotalHits"], 0);
}
