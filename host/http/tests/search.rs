//! The search path merges like one node: the products and defaults scenarios are recorded
//! against ONE development node holding everything, then replayed through Miroir in front of
//! several nodes and compared in every mode, `ranked` included.

mod common;

use std::path::Path;
use std::process::Command;

use common::{shared_dir, ClusterBuilder};
use miroir_devnode::testing::TestNode;

const KEY: &str = "search-master-key";

/// Steps whose answer depends on what each node holds, so a sharded index cannot equal one
/// node: `frequency` drops the query words most frequent in the index, and each node decides
/// from its own documents. Documented in `docs/architecture.md`.
const SHARDING_DIFFERENCES: &[&str] = &["search.matching.frequency"];

/// Record `scenario` against a single development node; returns the recording's path.
fn record_single_node(scenario: &str, dir: &Path) -> std::path::PathBuf {
    let node = TestNode::start(Some(KEY));
    let out = dir.join(format!("{scenario}.jsonl"));
    let status = Command::new("python3")
        .arg(shared_dir().join("contract/contract.py"))
        .args(["record", "--url", &node.url(), "--key", KEY, "--out"])
        .arg(&out)
        .arg(shared_dir().join(format!("contract/scenarios/{scenario}.json")))
        .status()
        .expect("python3 records the scenario");
    assert!(status.success(), "recording {scenario} failed");
    let kept: Vec<String> = std::fs::read_to_string(&out)
        .expect("recording written")
        .lines()
        .filter(|line| {
            let step: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            !SHARDING_DIFFERENCES.contains(&step["name"].as_str().unwrap_or_default())
        })
        .map(str::to_owned)
        .collect();
    std::fs::write(&out, kept.join("\n") + "\n").expect("rewrite recording");
    out
}

async fn check_through_miroir(
    groups: usize,
    per_group: usize,
    rf: u32,
    recording: &Path,
) -> String {
    let cluster = ClusterBuilder::new(groups, per_group, rf).master_key(KEY).start().await;
    let url = cluster.url.clone();
    let recording = recording.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(shared_dir().join("contract/contract.py"))
            .args(["check", "--url", &url, "--key", KEY])
            .arg(&recording)
            .output()
            .expect("python3 runs the contract")
    })
    .await
    .expect("contract thread");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "({groups} x {per_group}, RF {rf}) differs from one node:\n{stdout}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_through_miroir_equal_one_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    for scenario in ["products", "defaults"] {
        let recording = record_single_node(scenario, dir.path());
        for (groups, per_group, rf) in [(1, 3, 1), (2, 2, 2)] {
            let out = check_through_miroir(groups, per_group, rf, &recording).await;
            println!(
                "{scenario} over {groups}x{per_group} RF {rf}: {}",
                out.lines().last().unwrap_or("")
            );
        }
    }
}
