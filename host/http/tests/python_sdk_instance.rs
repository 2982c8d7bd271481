//! The official Python SDK's instance and task calls through Miroir over three development
//! nodes answer what they answer on one node (tasks with `customMetadata`, `reverse`,
//! `canceledBy`, batches, experimental features, dumps), and Miroir's webhooks receive its
//! finished tasks.

mod common;

use common::{run_sdk_script, ClusterBuilder, NODE_KEY};
use serde_json::{json, Value};

async fn run_script(url: String, key: &str, webhooks: bool) -> Value {
    let mut args = vec![url, key.to_owned()];
    if webhooks {
        args.push("--webhooks".into());
    }
    let stdout = run_sdk_script("instance_and_tasks.py", args).await;
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_sdk_instance_and_task_calls_work_against_miroir() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let node_url = one.nodes[0].as_ref().expect("node").url();
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("the-master").start().await;
    let watcher = miroir_http::webhooks::spawn_watcher(cluster.state.clone());
    let (on_node, through) = tokio::join!(
        run_script(node_url, NODE_KEY, false),
        run_script(cluster.url.clone(), "the-master", true)
    );
    assert_eq!(on_node["task.custom-metadata"], "import #1", "{on_node}");
    for (name, value) in on_node.as_object().expect("object") {
        assert_eq!(&through[name], value, "{name}");
    }
    assert_eq!(through["webhooks.created-headers"], json!({"authorization": "Bearer XXX..."}));
    assert_eq!(through["webhooks.listed"], json!([true]));
    assert_eq!(
        through["webhooks.delivered-types"],
        json!(["documentAdditionOrUpdate", "dumpCreation", "indexCreation"]),
        "{through}"
    );
    assert_eq!(through["webhooks.metadata"], json!(["import #1"]));
    assert_eq!(through["webhooks.header"], "yes");
    assert_eq!(through["webhooks.after-delete"], 0);
    watcher.abort();
}
