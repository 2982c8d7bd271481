//! The process, connection and node request metrics of `miroir serve`, read after real
//! traffic: resident memory and open file descriptors of the process, the client connections
//! open, which follow the clients' keep-alive connections as they open and close, and node
//! request durations by node and route kind.

use std::time::Duration;

use gateway::{nodes_section, send, wait_for, Gateway};
use miroir_devnode::testing::TestNode;

mod gateway;

const KEY: &str = "process-master-key";
const NODE_KEY: &str = "process-node-key";

/// The value of the series named exactly `series` (no labels) in a Prometheus text page.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A client that opens a new connection per request: its scrapes count one connection.
fn one_shot_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[test]
fn process_memory_descriptors_and_open_connections_follow_real_traffic() {
    let node = TestNode::start(Some(NODE_KEY));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!("metrics: {{ enabled: false }}\n{}", nodes_section([node.url()]));
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let scraper = one_shot_client();
    let scrape = || send(&scraper, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;

    let metrics = scrape();
    assert!(value(&metrics, "process_resident_memory_bytes").is_some_and(|rss| rss > 1e6));
    assert!(value(&metrics, "process_open_fds").is_some_and(|fds| fds > 0.0));

    // Five clients keep a connection open each (keep-alive) after a request.
    let clients: Vec<reqwest::blocking::Client> = (0..5)
        .map(|_| {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            assert_eq!(send(&client, "GET", &format!("{base}/version"), KEY, None).0, 200);
            client
        })
        .collect();
    wait_for(Duration::from_secs(10), "the open connections to count the clients", || {
        value(&scrape(), "miroir_client_connections_open").is_some_and(|open| open >= 6.0)
    });
    drop(clients);
    wait_for(Duration::from_secs(10), "closed connections to leave the count", || {
        value(&scrape(), "miroir_client_connections_open") == Some(1.0)
    });

    // An index creation asks the node: its request is timed under the node and route kind.
    let created = send(
        &scraper,
        "POST",
        &format!("{base}/indexes"),
        KEY,
        Some(serde_json::json!({"uid": "timed"})),
    );
    assert_eq!(created.0, 202, "{}", created.1);
    let series = "miroir_node_request_duration_seconds_count{node=\"n0\",route=\"indexes\"}";
    let timed = value(&scrape(), series);
    assert!(timed.is_some_and(|n| n >= 1.0), "{series}: {timed:?}");
}
