//! Tail latency with a slow replica: adaptive replica selection and hedged requests keep the
//! p99 of searches close to the one with every node healthy, within the hedge budget.
//!
//! No time is asserted: each test compares the p99s of two clusters searched in turn in the
//! same run, one healthy and one with a slow replica. Every node waits a base search delay, so
//! the figures are the delays' more than the machine's; the slow replica waits ten times longer.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{load_products, Cluster, ClusterBuilder};
use serde_json::json;

/// Every node's search delay; the slow replica's is ten times longer.
const BASE: Duration = Duration::from_millis(20);

/// Searches measured per cluster, after a warm-up.
const SEARCHES: usize = 200;
const WARM_UP: usize = 20;

/// One search, timed.
async fn timed_search(cluster: &Cluster) -> Duration {
    let search = json!({"q": "", "sort": ["price:asc"], "limit": 10});
    let started = Instant::now();
    let answer = cluster.send_json("POST", "/indexes/products/search", &search).await;
    let elapsed = started.elapsed();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["estimatedTotalHits"], 100);
    elapsed
}

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() * 99 / 100 - 1]
}

/// Hedged requests and node requests sent so far.
fn requests(cluster: &Cluster) -> (u64, u64) {
    let hedges = cluster.state.replica_load().hedges.sent.load(Ordering::Relaxed);
    (hedges, cluster.state.read_stats().snapshot().node_requests)
}

/// Two clusters of `nodes` nodes with RF 2, one with a replica ten times slower, searched in
/// turn so both see the same machine: the slow replica's p99 stays within 1.5× of the healthy
/// one, and in both hedges stay within the 5 % budget.
async fn slow_replica_barely_moves_the_p99(nodes: usize, shards: u32) {
    let healthy = ClusterBuilder::new(1, nodes, 2).shards(shards).start().await;
    let slowed = ClusterBuilder::new(1, nodes, 2).shards(shards).start().await;
    for cluster in [&healthy, &slowed] {
        load_products(cluster, 100).await;
        for node in cluster.nodes.iter().flatten() {
            node.set_search_delay(BASE);
        }
    }
    let slow = slowed.nodes.last().and_then(Option::as_ref).expect("the last node");
    slow.set_search_delay(BASE * 10);
    for _ in 0..WARM_UP {
        timed_search(&healthy).await;
        timed_search(&slowed).await;
    }
    let (mut healthy_times, mut slowed_times) = (Vec::new(), Vec::new());
    for _ in 0..SEARCHES {
        healthy_times.push(timed_search(&healthy).await);
        slowed_times.push(timed_search(&slowed).await);
    }
    let (healthy_p99, slowed_p99) = (p99(healthy_times), p99(slowed_times));
    for (name, cluster) in [("healthy", &healthy), ("slow replica", &slowed)] {
        let (hedges, sent) = requests(cluster);
        eprintln!("{name}: {hedges} hedges for {sent} node requests");
        assert!(hedges as f64 <= 0.05 * sent as f64, "{name}: {hedges} hedges for {sent} requests");
    }
    eprintln!("p99 healthy {healthy_p99:?}, with a slow replica {slowed_p99:?}");
    assert!(
        slowed_p99.as_secs_f64() <= healthy_p99.as_secs_f64() * 1.5,
        "p99 with a slow replica {slowed_p99:?}, healthy {healthy_p99:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_replica_of_a_whole_index_barely_moves_the_p99() {
    // Two nodes, RF 2: each holds the whole index, a search asks one of them.
    slow_replica_barely_moves_the_p99(2, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_replica_in_a_scatter_barely_moves_the_p99() {
    // Three nodes, RF 2, 16 shards: every shard has a replica on a fast node.
    slow_replica_barely_moves_the_p99(3, 16).await;
}
