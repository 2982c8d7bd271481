//! The development node against recordings of a real Meilisearch 1.50, replayed with the
//! shared contract runner (`contract.py check`) over real HTTP.

use std::path::PathBuf;
use std::process::Command;

use miroir_devnode::testing::TestNode;

const KEY: &str = "contract-master-key";

/// `../shared` beside the repository, or `MIROIR_SHARED_DIR`.
fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("MIROIR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("contract/contract.py").exists(),
        "the contract runner is missing at {}; set MIROIR_SHARED_DIR",
        dir.display()
    );
    dir
}

/// Run `contract.py check` and return (passed, failed, output).
fn check(recording: &str, modes: &str, only: &[&str]) -> (u32, u32, String) {
    let node = TestNode::start(Some(KEY));
    let shared = shared_dir();
    let mut cmd = Command::new("python3");
    cmd.arg(shared.join("contract/contract.py"))
        .args(["check", "--url", &node.url(), "--key", KEY, "--modes", modes])
        .arg(shared.join("contract/recordings").join(recording));
    if !only.is_empty() {
        cmd.args(["--only", &only.join(",")]);
    }
    let out = cmd.output().expect("python3 runs the contract checker");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let nums: Vec<u32> =
        last.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
    assert_eq!(
        nums.len(),
        2,
        "unexpected checker output:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (nums[0], nums[1], stdout)
}

/// The steps the core of the development node must answer exactly like Meilisearch.
const CORE_STEPS: &[&str] = &[
    "setup.",
    "index.",
    "settings.",
    "documents.",
    "stats.",
    "doc.",
    "browse.",
    "tasks.",
    "indexes.",
    "health",
    "search.filter.",
    "search.sort.price",
    "search.sort.multi",
    "search.sort.offset",
    "search.page-sorted",
    "search.facets",
    "error.",
    "search-error.",
];

#[test]
fn core_steps_of_products_recording_pass() {
    let (passed, failed, out) = check("products.jsonl", "exact,set,total,status", CORE_STEPS);
    assert_eq!(failed, 0, "contract failures:\n{out}");
    assert!(passed >= 48, "too few steps compared ({passed}):\n{out}");
}

/// Sorted and filtered placeholder searches: same hits in the same order, ties on the sort
/// fields aside.
#[test]
fn sorted_and_filtered_searches_rank_like_meilisearch() {
    let steps = [
        "setup.",
        "index.create",
        "settings.update",
        "documents.add",
        "search.filter.",
        "search.sort.price",
        "search.sort.multi",
        "search.sort.offset",
        "search.page-sorted",
        "search.facets-filter",
    ];
    let (passed, failed, out) = check("products.jsonl", "ranked", &steps);
    assert_eq!(failed, 0, "contract failures:\n{out}");
    assert!(passed >= 15, "too few steps compared ({passed}):\n{out}");
}

/// The whole of every recording: zero failures in the exact, set, total and status modes; the
/// ranked counts are printed (`cargo test -- --nocapture`) and must be all passes too.
#[test]
fn every_recording_passes_in_every_mode() {
    for recording in ["products.jsonl", "vectors.jsonl", "defaults.jsonl"] {
        let (passed, failed, out) = check(recording, "exact,set,total,status", &[]);
        assert_eq!(failed, 0, "{recording}: contract failures:\n{out}");
        assert!(passed > 0, "{recording}: no step compared:\n{out}");
        let (ranked_passed, ranked_failed, ranked_out) = check(recording, "ranked", &[]);
        println!(
            "{recording}: exact,set,total,status {passed} passed, {failed} failed; ranked {ranked_passed} passed, {ranked_failed} failed"
        );
        assert_eq!(ranked_failed, 0, "{recording}: ranked failures:\n{ranked_out}");
    }
}
