//! With every plugin disabled, no wasmtime engine exists. Its own test binary, so that no other
//! test of the process creates an engine.

use std::sync::Arc;

use miroir_config::{Config, CustomPlugin};
use miroir_plugins::{engines_created_in_process, InMemoryHost, PluginRuntime, PluginSpec};

#[tokio::test]
async fn no_engine_is_created_when_every_plugin_is_disabled() {
    let mut config = Config::default();
    config.multi_search.enabled = false;
    config.vector_search.enabled = false;
    config.shadow.enabled = false;
    config.cdc.enabled = false;
    config.plugins.custom.push(CustomPlugin {
        name: "top-facets".into(),
        component: "/does/not/matter.wasm".into(),
        enabled: false,
        deadline_ms: None,
        memory_mb: None,
        config: serde_json::json!({}),
    });
    assert!(PluginSpec::from_config(&config).unwrap().is_empty());

    let runtime = PluginRuntime::from_config(&config, Arc::new(InMemoryHost::new())).await.unwrap();
    assert!(!runtime.engine_created());
    assert!(runtime.plugin_names().is_empty());
    assert!(runtime.routes().is_empty());
    assert_eq!(engines_created_in_process(), 0);

    let error = runtime
        .handle(miroir_plugins::Request {
            method: "POST".into(),
            path: "/multi-search".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(error.status(), 404);
    let request = serde_json::json!({"q": 1});
    let plan = runtime.plan_search("movies", miroir_types::SearchRoute::Search, &request, None);
    assert_eq!(plan.await.unwrap(), miroir_types::SearchPlan::Decline);
    assert_eq!(engines_created_in_process(), 0);
}

#[test]
fn enabled_features_map_to_components_in_the_plugins_dir() {
    let mut config = Config::default();
    config.plugins.dir = "/opt/plugins".into();
    config.multi_search.enabled = true;
    config.multi_search.enabled_explicitly = true;
    let specs = PluginSpec::from_config(&config).unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].name, "multi_search");
    assert_eq!(specs[0].component, std::path::Path::new("/opt/plugins/multi_search.wasm"));
    assert_eq!(specs[0].config["max_queries_per_batch"], 100);
    assert_eq!(engines_created_in_process(), 0);
}
