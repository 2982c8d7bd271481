//! `/_miroir/ready`, `/_miroir/topology` and `/_miroir/shards` follow the prober's view of the
//! nodes: ready while every shard has a node up, 503 naming the shards once one has none.

mod common;

use std::collections::BTreeSet;

use common::ClusterBuilder;
use serde_json::json;

const KEY: &str = "status-master-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_and_topology_follow_node_health() {
    let mut cluster = ClusterBuilder::new(1, 3, 1).master_key(KEY).health_probes().start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;

    // The readiness probe needs no key; the other two need the admin key.
    let http = reqwest::Client::new();
    let ready = http.get(format!("{}/_miroir/ready", cluster.url)).send().await.expect("ready");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.expect("json"), json!({"status": "ready"}));
    let open = http.get(format!("{}/_miroir/topology", cluster.url)).send().await.expect("topo");
    assert_eq!(open.status(), 401);

    let topology = cluster.get("/_miroir/topology").await;
    assert_eq!(topology.status, 200, "{:?}", topology.body);
    assert_eq!(topology.body["replicationFactor"], 1);
    let nodes = topology.body["groups"][0]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["health"] == "healthy"), "{nodes:?}");

    let shards = cluster.get("/_miroir/shards?index=books").await;
    assert_eq!(shards.status, 200, "{:?}", shards.body);
    let books = &shards.body["books"];
    assert_eq!(books["shardCount"], 64);
    assert_eq!(books["unavailableShards"], json!([]));
    assert_eq!(books["shards"].as_array().expect("shards").len(), 64);
    let missing = cluster.get("/_miroir/shards?index=nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["code"], "index_not_found");

    // Node 1 stops: once the prober says it is down, its shards have no replica.
    let stopped = cluster.node_ids[1].clone();
    cluster.stop_node_until_down(1).await;
    let lost: Vec<u32> =
        cluster.state.assignment(64).shards_of(&stopped).into_iter().map(|s| s.get()).collect();
    let ready = http.get(format!("{}/_miroir/ready", cluster.url)).send().await.expect("ready");
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["unavailableShards"]["books"], json!(lost));

    let topology = cluster.get("/_miroir/topology").await;
    let states: BTreeSet<(String, String)> = topology.body["groups"][0]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_owned(), n["health"].as_str().unwrap().to_owned()))
        .collect();
    assert!(states.contains(&(stopped.to_string(), "down".to_owned())), "{states:?}");
    let shards = cluster.get("/_miroir/shards").await;
    assert_eq!(shards.body["books"]["unavailableShards"], json!(lost));
}
