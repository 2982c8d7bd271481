//! The search path merges like one node: the products and defaults scenarios are recorded once
//! against ONE development node holding everything, then replayed through Miroir in front of
//! several nodes and compared in every mode, `ranked` included.
//!
//! The matrix covers N = 1, 3 and 6 nodes and every (replica groups, RF) pair of (1, 1), (1, 2),
//! (2, 1), (2, 2); each topology is its own test, so the harness runs them side by side and a
//! failure names its layout. Every test prints how long its checks took.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use common::{contract_check, contract_record, shared_dir, ClusterBuilder};
use miroir_devnode::testing::TestNode;

const KEY: &str = "search-master-key";

/// The scenarios replayed through every topology.
const SCENARIOS: &[&str] = &["products", "defaults", "vectors"];

/// Steps whose answer depends on what each node holds, so a sharded index cannot equal one
/// node: `frequency` drops the query words most frequent in the index, and each node decides
/// from its own documents. Documented in `docs/architecture.md`. Kept in the one-node check.
const SHARDING_DIFFERENCES: &[&str] = &["search.matching.frequency"];

/// Steps left out of every check, by name prefix: multi-search is served by the multi-search
/// plugin, which the in-process gateway of these tests does not load
/// (`host/miroir/tests/multi_search.rs` checks those steps through `miroir serve`).
const NOT_SERVED_HERE: &[&str] = &["multi."];

/// The recordings of one development node, made once per test process.
struct Recordings {
    dir: PathBuf,
}

impl Recordings {
    /// The recording of `scenario` (the steps served here).
    fn whole(&self, scenario: &str) -> PathBuf {
        self.dir.join(format!("{scenario}.jsonl"))
    }

    /// The recording of `scenario` without the steps a sharded index cannot answer alike.
    fn shardable(&self, scenario: &str) -> PathBuf {
        self.dir.join(format!("{scenario}.sharded.jsonl"))
    }
}

/// Records every scenario against its own single development node (the scenarios in parallel),
/// once for the whole test binary.
fn recordings() -> &'static Recordings {
    static RECORDINGS: OnceLock<Recordings> = OnceLock::new();
    RECORDINGS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("search-equivalence-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("recording dir");
        let started = Instant::now();
        std::thread::scope(|scope| {
            for scenario in SCENARIOS {
                let dir = &dir;
                scope.spawn(move || record_single_node(scenario, dir));
            }
        });
        println!("recorded {SCENARIOS:?} on one node in {:.1?}", started.elapsed());
        Recordings { dir }
    })
}

/// Record `scenario` against a single development node, writing the recording without
/// [`NOT_SERVED_HERE`] and the one also without [`SHARDING_DIFFERENCES`].
fn record_single_node(scenario: &str, dir: &Path) {
    let node = TestNode::start(Some(KEY));
    let out = dir.join(format!("{scenario}.jsonl"));
    let input = shared_dir().join(format!("contract/scenarios/{scenario}.json"));
    let output = contract_record(&node.url(), KEY, &input, &out);
    assert!(
        output.status.success(),
        "recording {scenario} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let recorded = std::fs::read_to_string(&out).expect("recording written");
    let keep = |sharded: bool| {
        let lines: Vec<&str> = recorded
            .lines()
            .filter(|line| {
                let step: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                let name = step["name"].as_str().unwrap_or_default();
                let not_served = NOT_SERVED_HERE.iter().any(|prefix| name.starts_with(prefix));
                let differs = sharded && SHARDING_DIFFERENCES.contains(&name);
                !(not_served || differs)
            })
            .collect();
        lines.join("\n") + "\n"
    };
    std::fs::write(&out, keep(false)).expect("write the recording");
    std::fs::write(dir.join(format!("{scenario}.sharded.jsonl")), keep(true))
        .expect("write the shardable recording");
}

/// Replays every scenario through Miroir over `groups` x `per_group` nodes at `rf`, asserting
/// zero failures, and prints the time it took.
async fn check_topology(groups: usize, per_group: usize, rf: u32) {
    let recordings = tokio::task::spawn_blocking(recordings).await.expect("recording thread");
    let started = Instant::now();
    let cluster =
        ClusterBuilder::new(groups, per_group, rf).master_key(KEY).vector_search().start().await;
    let one_node = groups * per_group == 1;
    for scenario in SCENARIOS {
        let recording =
            if one_node { recordings.whole(scenario) } else { recordings.shardable(scenario) };
        let url = cluster.url.clone();
        let output = tokio::task::spawn_blocking(move || contract_check(&url, KEY, &recording))
            .await
            .expect("contract thread");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{scenario} over {groups}x{per_group} RF {rf} differs from one node:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!(
            "{scenario} over {groups}x{per_group} RF {rf}: {}",
            stdout.lines().last().unwrap_or_default()
        );
    }
    println!("{groups}x{per_group} RF {rf}: checked in {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_equals_one_node() {
    check_topology(1, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_rf1_equal_one_node() {
    check_topology(1, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_rf2_equal_one_node() {
    check_topology(1, 3, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_rf1_equal_one_node() {
    check_topology(1, 6, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_rf2_equal_one_node() {
    check_topology(1, 6, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_of_three_rf1_equal_one_node() {
    check_topology(2, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_groups_of_three_rf2_equal_one_node() {
    check_topology(2, 3, 2).await;
}
