//! The loaded plugins as the gateway's hook port: only declared hooks are offered, a plugin
//! without search or off-path hooks costs the gateway nothing ([`miroir_types::NoHooks`]), hook
//! failures become [`HookError`]s, and every call is reported with its hook.

mod common;

use std::sync::Arc;

use common::{load, spec};
use miroir_plugins::{PluginSpec, ShardAnswer};
use miroir_types::{HookError, HookSet, SearchPlan, SearchRoute};
use serde_json::json;

#[tokio::test]
async fn only_declared_hooks_are_offered() {
    let only_writes = PluginSpec {
        config: json!({ "hooks": ["on-write"] }),
        ..spec("writes", "test_hooks.wasm", 2000, 64)
    };
    let (runtime, _host) = load(vec![only_writes]).await;
    let port = Arc::new(runtime).hook_port();
    assert_eq!(port.hooks(), HookSet { on_write: true, ..HookSet::default() });

    let (runtime, _host) = load(vec![spec("bad", "test_misbehave.wasm", 2000, 64)]).await;
    let port = Arc::new(runtime).hook_port();
    assert_eq!(port.hooks(), HookSet::default(), "routes only: the no-op port");
}

#[tokio::test]
async fn search_hooks_go_through_the_port_and_calls_are_reported() {
    let (runtime, host) = load(vec![spec("hooks", "test_hooks.wasm", 2000, 64)]).await;
    let port = Arc::new(runtime).hook_port();
    assert!(port.hooks().searches() && port.hooks().after_response && port.hooks().on_write);
    let search = SearchRoute::Search;
    let planned = port.plan_search("movies", search, &json!({ "q": "dune" }), None).await;
    assert_eq!(
        planned.expect("plan"),
        SearchPlan::Rewrite {
            request: json!({ "q": "dune", "planned": true }),
            merged_by: Some("hooks".into())
        }
    );
    let refused =
        port.plan_search("movies", search, &json!({ "reject": true }), None).await.unwrap_err();
    assert!(
        matches!(refused, HookError::Rejected { status: 400, ref code, .. } if code == "invalid_search_q")
    );
    let answer = ShardAnswer {
        shard: 3,
        node: "n1".into(),
        status: 200,
        body: json!({ "hits": [{ "id": 1 }], "estimatedTotalHits": 1 }),
        took: std::time::Duration::from_micros(5),
    };
    let merged = port.merge_search("hooks", "movies", &json!({ "q": "dune" }), vec![answer]).await;
    assert_eq!(merged.expect("declared").expect("merged")["estimatedTotalHits"], 1);
    let calls = host.calls();
    let hooks: Vec<&str> = calls.iter().map(|(_, hook, _)| *hook).collect();
    assert!(hooks.ends_with(&["plan-search", "plan-search", "merge-search"]), "{hooks:?}");
    assert!(calls.iter().all(|(plugin, _, failed)| plugin == "hooks" && !failed));
}

#[tokio::test]
async fn a_trapping_hook_is_a_failed_hook_error_and_a_reported_failure() {
    let trapping = PluginSpec {
        config: json!({ "search": "trap" }),
        ..spec("bad", "test_misbehave.wasm", 2000, 64)
    };
    let (runtime, host) = load(vec![trapping]).await;
    let port = Arc::new(runtime).hook_port();
    let search = SearchRoute::Search;
    let error = port.plan_search("movies", search, &json!({ "q": "x" }), None).await.unwrap_err();
    assert!(matches!(error, HookError::Failed { ref plugin, .. } if plugin == "bad"), "{error:?}");
    assert!(host.calls().contains(&("bad".to_owned(), "plan-search", true)));
    // The next call gets a fresh instance and fails alone again.
    assert!(port.plan_search("movies", search, &json!({}), None).await.is_err());
}
