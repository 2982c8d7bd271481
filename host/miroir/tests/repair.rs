//! The leader's repair loop of `miroir serve`, over real development nodes: with RF 2 in one
//! group of 3, a node killed while writes go on misses them (every write still acknowledged),
//! `miroir_repair_pending` and `miroir_shard_coverage` say so, and once the node is back on an
//! empty disk the leader rebuilds it: every document is on both owners of its shard again and
//! searches agree.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway::{json_of, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;

const KEY: &str = "repair-master-key";
const NODE_KEY: &str = "repair-node-key";

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line[name.len()..].trim().parse().ok())
}

fn documents(from: usize, count: usize) -> Value {
    Value::from(
        (from..from + count)
            .map(|i| json!({"id": format!("d{i}"), "title": format!("book {i}")}))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn the_leader_rebuilds_a_node_that_came_back_empty() {
    let mut nodes: Vec<Option<TestNode>> =
        (0..3).map(|_| Some(TestNode::start(Some(NODE_KEY)))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut section = String::from("nodes:\n");
    for (i, node) in nodes.iter().enumerate() {
        let url = node.as_ref().expect("node").url();
        section.push_str(&format!("  - {{ id: n{i}, address: \"{url}\", replica_group: g }}\n"));
    }
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 16\nreplication_factor: 2\n\
         health: {{ interval: 150ms, timeout: 100ms, down_after: 2 }}\n{section}"
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    wait_for(Duration::from_secs(30), "this instance to lead", || {
        json_of(send(&client, "GET", &format!("{base}/_miroir/leader"), KEY, None))["is_leader"]
            == true
    });
    let created = send(
        &client,
        "POST",
        &format!("{base}/indexes"),
        KEY,
        Some(json!({"uid": "books", "primaryKey": "id"})),
    );
    wait_task(&client, &base, KEY, created);
    let added = send(
        &client,
        "POST",
        &format!("{base}/indexes/books/documents"),
        KEY,
        Some(documents(0, 200)),
    );
    wait_task(&client, &base, KEY, added);

    let addr = nodes[0].as_ref().expect("node").addr();
    nodes[0] = None;
    for batch in 0..10 {
        let answer = send(
            &client,
            "POST",
            &format!("{base}/indexes/books/documents"),
            KEY,
            Some(documents(200 + batch * 20, 20)),
        );
        wait_task(&client, &base, KEY, answer);
    }
    wait_for(Duration::from_secs(10), "the missed writes in the metrics", || {
        let metrics = send(&client, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;
        metric(&metrics, "miroir_repair_pending{node=\"n0\"}") == Some(1.0)
            && metric(&metrics, "miroir_background_queue_depth") == Some(1.0)
    });

    nodes[0] = Some(TestNode::start_at(addr, Some(NODE_KEY), Duration::ZERO));
    wait_for(Duration::from_secs(60), "the node to be repaired", || {
        let metrics = send(&client, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;
        metric(&metrics, "miroir_repair_pending{node=\"n0\"}") == Some(0.0)
            && metric(&metrics, "miroir_background_queue_depth") == Some(0.0)
            && metric(&metrics, "miroir_shard_coverage") == Some(1.0)
            && metric(&metrics, "miroir_repair_documents_copied_total").is_some_and(|n| n > 0.0)
    });

    // Every document is on exactly two nodes (its two owners), asked with the node key.
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for node in nodes.iter().map(|n| n.as_ref().expect("node")) {
        let url = format!("{}/indexes/books/documents/fetch", node.url());
        let answer = json_of(send(
            &client,
            "POST",
            &url,
            NODE_KEY,
            Some(json!({"limit": 10_000, "fields": ["id"]})),
        ));
        for document in answer["results"].as_array().expect("results") {
            *copies.entry(document["id"].as_str().expect("id").to_owned()).or_default() += 1;
        }
    }
    assert_eq!(copies.len(), 400);
    assert!(copies.values().all(|n| *n == 2), "{copies:?}");
    for attempt in 0..50 {
        let search = json_of(send(
            &client,
            "POST",
            &format!("{base}/indexes/books/search"),
            KEY,
            Some(json!({"q": ""})),
        ));
        assert_eq!(search["estimatedTotalHits"], 400, "search {attempt}: {search}");
    }
}
