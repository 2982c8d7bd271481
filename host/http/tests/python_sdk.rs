//! The official Meilisearch Python SDK (`meilisearch` from PyPI) against Miroir over three
//! development nodes: index, settings, documents, tasks, searches with filters, facets, sort and
//! pagination, get and delete, as an application would use them.

mod common;

use common::ClusterBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_sdk_works_against_miroir() {
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("sdk-key").start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_client.py");
    let url = cluster.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([script, &url, "sdk-key"])
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("sdk thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python SDK failed (is `meilisearch` installed? .ci/run installs it):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
