//! The recorded real-Meilisearch contract, replayed through Miroir: every step that ONE
//! development node passes, Miroir passes too, over one node, over three nodes, and over two
//! replica groups at RF 2. Searches included: the only steps allowed to fail through a sharded
//! index are those whose answer depends on what each node holds ([`SHARDING_DIFFERENCES`]).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use common::{contract_check, shared_dir, ClusterBuilder};
use miroir_devnode::testing::TestNode;

const KEY: &str = "contract-master-key";

/// The real recordings replayed.
const RECORDINGS: &[&str] = &["products", "defaults", "vectors", "api"];

/// Steps whose answer depends on what each node holds, so a sharded index cannot equal one
/// node: `frequency` drops the query words most frequent in the index, and each node decides
/// from its own documents. Documented in `docs/architecture.md`.
const SHARDING_DIFFERENCES: &[&str] = &["search.matching.frequency"];

/// Steps not served by the in-process gateway of these tests, by name prefix: multi-search is
/// the multi-search plugin's (`host/miroir/tests/multi_search.rs` checks it through
/// `miroir serve`).
const NOT_SERVED_HERE: &[&str] = &["multi."];

fn recording(name: &str) -> PathBuf {
    shared_dir().join("contract/recordings").join(format!("{name}.jsonl"))
}

/// Replays `recording` against `url`; returns the names of the failing steps and the output.
fn failures(url: &str, recording: &std::path::Path) -> (BTreeSet<String>, String) {
    let output = contract_check(url, KEY, recording);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        stdout.lines().last().is_some_and(|l| l.ends_with(" failed")),
        "the contract did not finish:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let failed = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .filter_map(|l| l.split_once(": ").map(|(name, _)| name.to_owned()))
        .collect();
    (failed, stdout)
}

/// The steps of each real recording that one development node, asked directly, fails: computed
/// once per test process.
fn node_failures() -> &'static Vec<BTreeSet<String>> {
    static BASELINE: OnceLock<Vec<BTreeSet<String>>> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let node = TestNode::start(Some(KEY));
        RECORDINGS
            .iter()
            .map(|name| {
                let (failed, stdout) = failures(&node.url(), &recording(name));
                println!("{name} on one development node: {}", stdout.lines().last().unwrap_or(""));
                failed
            })
            .collect()
    })
}

/// Replays every real recording through Miroir over `groups` x `per_group` nodes at `rf` and
/// asserts that every step failing through Miroir also fails on one development node (or is a
/// documented exception).
async fn at_least_what_one_node_passes(groups: usize, per_group: usize, rf: u32) {
    let baseline = tokio::task::spawn_blocking(node_failures).await.expect("baseline thread");
    let sharded = groups * per_group > 1;
    for (name, node_failed) in RECORDINGS.iter().zip(baseline) {
        let cluster = ClusterBuilder::new(groups, per_group, rf)
            .master_key(KEY)
            .vector_search()
            .start()
            .await;
        let url = cluster.url.clone();
        let path = recording(name);
        let (failed, stdout) =
            tokio::task::spawn_blocking(move || failures(&url, &path)).await.expect("thread");
        println!(
            "{name} through Miroir over {groups}x{per_group} RF {rf}: {}",
            stdout.lines().last().unwrap_or("")
        );
        let unexpected: Vec<&String> = failed
            .iter()
            .filter(|step| !node_failed.contains(*step))
            .filter(|step| !NOT_SERVED_HERE.iter().any(|prefix| step.starts_with(prefix)))
            .filter(|step| !(sharded && SHARDING_DIFFERENCES.contains(&step.as_str())))
            .collect();
        assert!(
            unexpected.is_empty(),
            "{name} over {groups}x{per_group} RF {rf}: {unexpected:?} pass on one development \
             node but fail through Miroir:\n{stdout}"
        );
    }
}

/// With one node, every answer (searches included) comes from a node holding every document:
/// bookkeeping (`_miroir_shard`) must never show nor change relevance (the `defaults`
/// scenario).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_recordings_pass_through_miroir_with_one_node() {
    at_least_what_one_node_passes(1, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_recordings_pass_through_miroir_with_three_nodes() {
    at_least_what_one_node_passes(1, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_recordings_pass_with_two_groups_and_rf2() {
    at_least_what_one_node_passes(2, 2, 2).await;
}
