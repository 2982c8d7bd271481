//! Tail latency with a slow replica: adaptive replica selection and hedged requests keep the
//! p99 of searches close to the one with every node healthy, within the hedge budget.
//!
//! No time is asserted: each test compares two p99s measured in the same run. Every node waits
//! a base search delay, so the figures are the delays' and not the machine's; the slow replica
//! waits ten times longer.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{load_products, Cluster, ClusterBuilder};
use serde_json::json;

/// Every node's search delay; the slow replica's is ten times longer.
const BASE: Duration = Duration::from_millis(10);

/// Searches measured per phase, after a warm-up.
const SEARCHES: usize = 200;
const WARM_UP: usize = 20;

/// The p99 latency of [`SEARCHES`] sequential searches, after [`WARM_UP`] unmeasured ones.
async fn p99(cluster: &Cluster) -> Duration {
    let search = json!({"q": "", "sort": ["price:asc"], "limit": 10});
    for _ in 0..WARM_UP {
        let answer = cluster.send_json("POST", "/indexes/products/search", &search).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    let mut times = Vec::with_capacity(SEARCHES);
    for _ in 0..SEARCHES {
        let started = Instant::now();
        let answer = cluster.send_json("POST", "/indexes/products/search", &search).await;
        times.push(started.elapsed());
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["estimatedTotalHits"], 100);
    }
    times.sort();
    times[SEARCHES * 99 / 100 - 1]
}

/// Hedged requests and node requests sent so far.
fn requests(cluster: &Cluster) -> (u64, u64) {
    let hedges = cluster.state.replica_load().hedges.sent.load(Ordering::Relaxed);
    (hedges, cluster.state.read_stats().snapshot().node_requests)
}

/// With RF 2 on `nodes` nodes, one replica ten times slower: the p99 stays within 1.5× of the
/// healthy p99, and in both phases hedges stay within the 5 % budget.
async fn slow_replica_barely_moves_the_p99(nodes: usize, shards: u32) {
    let cluster = ClusterBuilder::new(1, nodes, 2).shards(shards).start().await;
    load_products(&cluster, 100).await;
    for node in cluster.nodes.iter().flatten() {
        node.set_search_delay(BASE);
    }
    let healthy = p99(&cluster).await;
    let (hedges, sent) = requests(&cluster);
    assert!(hedges as f64 <= 0.05 * sent as f64, "healthy: {hedges} hedges for {sent} requests");

    let slow = cluster.nodes.last().and_then(Option::as_ref).expect("the last node");
    slow.set_search_delay(BASE * 10);
    let with_slow = p99(&cluster).await;
    let (hedges, sent) = requests(&cluster);
    assert!(
        hedges as f64 <= 0.05 * sent as f64,
        "slow replica: {hedges} hedges for {sent} requests"
    );
    assert!(
        with_slow.as_secs_f64() <= healthy.as_secs_f64() * 1.5,
        "p99 with a slow replica {with_slow:?}, healthy {healthy:?}"
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
