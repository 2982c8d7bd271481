//! `showInternalDatabaseSizes` on `/stats` and index stats through Miroir over three
//! development nodes: the nodes' internal sizes summed, the same databases one node lists, and
//! one node's errors for a bad parameter.

mod common;

use common::{ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

fn names(sizes: &Value) -> Vec<String> {
    let mut names: Vec<String> = sizes.as_object().expect("sizes").keys().cloned().collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_database_sizes_are_summed_like_one_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    for target in [&one, &cluster] {
        target.send_and_wait("POST", "/indexes", &json!({"uid": "st", "primaryKey": "id"})).await;
        let docs: Vec<Value> =
            (0..40).map(|i| json!({"id": i, "title": "x".repeat(200)})).collect();
        target.send_and_wait("POST", "/indexes/st/documents", &json!(docs)).await;
    }
    let (_, on_node) = one.node_get(0, "/indexes/st/stats?showInternalDatabaseSizes=true").await;
    let through = cluster.get("/indexes/st/stats?showInternalDatabaseSizes=true").await;
    assert_eq!(through.status, 200, "{:?}", through.body);
    assert_eq!(
        names(&through.body["internalDatabaseSizes"]),
        names(&on_node["internalDatabaseSizes"])
    );
    assert_eq!(through.body["numberOfDocuments"], 40);
    let node_docs = on_node["internalDatabaseSizes"]["documents"].as_u64().expect("size");
    let summed = through.body["internalDatabaseSizes"]["documents"].as_u64().expect("size");
    assert!(summed >= node_docs, "{summed} < {node_docs}");
    let plain = cluster.get("/indexes/st/stats").await;
    assert!(plain.body.get("internalDatabaseSizes").is_none(), "{:?}", plain.body);

    let global = cluster.get("/stats?showInternalDatabaseSizes=true").await;
    assert_eq!(global.status, 200);
    assert!(global.body["indexes"]["st"]["internalDatabaseSizes"].is_object(), "{:?}", global.body);

    for path in ["/indexes/st/stats?showInternalDatabaseSizes=maybe", "/stats?colour=blue"] {
        let (status, on_node) = one.node_get(0, path).await;
        let through = cluster.get(path).await;
        assert_eq!((through.status, &through.body), (status, &on_node), "{path}");
    }
    let _ = NODE_KEY;
}
