//! The official Meilisearch Python SDK (`meilisearch` from PyPI) against Miroir over three
//! development nodes: index, settings, documents, tasks, searches with filters, facets, sort and
//! pagination, get and delete, as an application would use them; documents options (`sort`,
//! `fields`, `ids`, `retrieveVectors`, `skipCreation`, `csvDelimiter`, task metadata) and stats
//! with internal database sizes (raw and human).

mod common;

use common::{run_sdk_script, ClusterBuilder};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_sdk_works_against_miroir() {
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("sdk-key").start().await;
    let stdout =
        run_sdk_script("python_client.py", vec![cluster.url.clone(), "sdk-key".into()]).await;
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
