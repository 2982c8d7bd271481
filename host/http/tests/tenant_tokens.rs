//! Tenant tokens made by the official Python SDK, through Miroir over three development nodes,
//! answer what they answer on one node: search rules become filters on search (`POST` and
//! `GET`) and facet search; other indexes, other routes, a bad signature, an unknown key and an
//! expired token are refused alike.

mod common;

use common::{run_sdk_script, ClusterBuilder, NODE_KEY};
use serde_json::Value;

async fn run_script(url: String, key: &str) -> Value {
    let stdout = run_sdk_script("tenant_tokens.py", vec![url, key.to_owned()]).await;
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenant_tokens_behave_through_miroir_as_on_one_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let (on_node, through_miroir) =
        tokio::join!(run_script(node_url, NODE_KEY), run_script(cluster.url.clone(), "the-master"));

    // What one node answers is what a tenant token must do.
    let a_ids: Vec<Value> = (1..=60).filter(|i| i % 3 == 0).map(Value::from).collect();
    assert_eq!(on_node["search"], Value::Array(a_ids), "{on_node}");
    assert_eq!(on_node["search.total"], 20);
    assert_eq!(on_node["search.array-rules"], 60);
    for refused in ["refused.other-index", "refused.documents", "refused.bad-signature"] {
        assert_eq!(on_node[refused]["code"], "invalid_api_key", "{refused}: {on_node}");
        assert_eq!(on_node[refused]["status"], 403);
    }
    assert_eq!(on_node["refused.unknown-key"]["code"], "invalid_api_key");
    assert_eq!(on_node["refused.expired"]["code"], "invalid_api_key");
    assert_eq!(on_node["refused.bad-filter"]["code"], "invalid_search_filter");

    let names: Vec<&String> = on_node.as_object().expect("object").keys().collect();
    for name in names {
        assert_eq!(through_miroir[name], on_node[name], "{name}");
    }
}
