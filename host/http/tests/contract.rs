//! The recorded real-Meilisearch contract, replayed through Miroir in front of three
//! development nodes: the index, settings, document, task and error steps must answer as one
//! node did.

mod common;

use common::{shared_dir, ClusterBuilder};

const ONLY: &str = "setup.,index.,settings.,documents.,doc.,tasks.,indexes.,health,error.";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_contract_passes_through_miroir_with_three_nodes() {
    write_path_contract(1, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn products_contract_passes_with_two_groups_and_rf2() {
    write_path_contract(2, 2, 2).await;
}

async fn write_path_contract(groups: usize, per_group: usize, rf: u32) {
    let cluster =
        ClusterBuilder::new(groups, per_group, rf).master_key("contract-master-key").start().await;
    let shared = shared_dir();
    let url = cluster.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(shared.join("contract/contract.py"))
            .args(["check", "--url", &url, "--key", "contract-master-key", "--only", ONLY])
            .arg(shared.join("contract/recordings/products.jsonl"))
            .output()
            .expect("python3 runs the contract")
    })
    .await
    .expect("contract thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "contract failed:\n{stdout}");
}

/// Not a check: prints how the whole recording (search steps included) fares, for information.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "informational: the search path is not merged yet"]
async fn whole_products_recording_report() {
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("k").start().await;
    let shared = shared_dir();
    let url = cluster.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(shared.join("contract/contract.py"))
            .args(["check", "--url", &url, "--key", "k"])
            .arg(shared.join("contract/recordings/products.jsonl"))
            .output()
            .expect("python3 runs the contract")
    })
    .await
    .expect("contract thread");
    println!("{}", String::from_utf8_lossy(&output.stdout));
}

/// With one node, every answer (searches included) comes from a node holding every document, so
/// the whole recordings must pass: this checks that bookkeeping (`_miroir_shard`, the explicit
/// searchable list) never shows and never changes relevance (the `defaults` scenario).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_recordings_pass_through_miroir_with_one_node() {
    for recording in ["defaults.jsonl", "products.jsonl"] {
        let cluster = ClusterBuilder::new(1, 1, 1).master_key("k").start().await;
        let shared = shared_dir();
        let url = cluster.url.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .arg(shared.join("contract/contract.py"))
                .args(["check", "--url", &url, "--key", "k"])
                .arg(shared.join("contract/recordings").join(recording))
                .output()
                .expect("python3 runs the contract")
        })
        .await
        .expect("contract thread");
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{recording}: {stdout}");
        assert!(output.status.success(), "{recording} failed:\n{stdout}");
    }
}
