//! Routes and hooks work end to end: real components, the real runtime, the in-memory host.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{component, json, load, request, spec};
use miroir_plugins::{
    Hook, InMemoryHost, LoadError, MetricKind, PluginError, PluginRuntime, PluginSpec, ShardAnswer,
    Timing, WriteEvent,
};
use miroir_types::{SearchPlan, SearchRoute};
use serde_json::json;

fn hooks_spec(name: &str) -> PluginSpec {
    PluginSpec { config: json!({ "greeting": "hi" }), ..spec(name, "test_hooks.wasm", 2000, 64) }
}

#[tokio::test]
async fn manifest_routes_are_registered_and_served() {
    let (runtime, _host) = load(vec![hooks_spec("hooks")]).await;
    assert!(runtime.engine_created());
    assert_eq!(runtime.plugin_names(), vec!["hooks"]);
    assert_eq!(runtime.route_owner("get", "/_miroir/x/test/echo"), Some("hooks"));
    assert_eq!(runtime.route_owner("GET", "/_miroir/x/nothing"), None);
    let manifest = runtime.manifest("hooks").expect("manifest");
    assert_eq!(manifest.name, "test-hooks");
    assert!(manifest.hooks.contains(&Hook::PlanSearch));
    assert!(runtime.routes().iter().any(|(r, p)| r.method == "POST" && *p == "hooks"));

    let response = runtime
        .handle(request("POST", "/_miroir/x/test/echo?a=1&b=two", b"hello"))
        .await
        .expect("echo");
    assert_eq!(response.status, 200);
    let body = json(&response.body);
    assert_eq!(body["query"], "a=1&b=two");
    assert_eq!(body["body"], "hello");
    assert_eq!(body["config"]["greeting"], "hi", "init received the plugin's config");
}

#[tokio::test]
async fn an_unclaimed_route_is_no_route() {
    let (runtime, _host) = load(vec![hooks_spec("hooks")]).await;
    let error = runtime.handle(request("GET", "/_miroir/x/else", b"")).await.unwrap_err();
    assert!(matches!(error, PluginError::NoRoute { .. }));
    assert_eq!(error.status(), 404);
}

#[tokio::test]
async fn search_and_scatter_go_through_the_host() {
    let host = Arc::new(InMemoryHost::new().with_index(
        "movies",
        json!({ "hits": [{ "id": 1 }], "estimatedTotalHits": 1 }),
        vec![ShardAnswer {
            shard: 3,
            node: "meili-0".into(),
            status: 200,
            body: json!({ "hits": [] }),
            took: Duration::from_micros(250),
        }],
    ));
    let runtime = PluginRuntime::load(vec![hooks_spec("hooks")], host).await.expect("load");

    let response = runtime
        .handle(request("POST", "/_miroir/x/test/search?index=movies", br#"{"q":"dune"}"#))
        .await
        .expect("search");
    let body = json(&response.body);
    assert_eq!(body["hits"][0]["id"], 1);
    assert_eq!(body["query"], "dune", "the plugin's request reached the host");

    let response = runtime
        .handle(request("POST", "/_miroir/x/test/search?index=nope", b"{}"))
        .await
        .expect("search");
    assert_eq!(json(&response.body)["hostError"]["code"], "index_not_found");

    let response =
        runtime.handle(request("GET", "/_miroir/x/test/scatter?index=movies", b"")).await.unwrap();
    let body = json(&response.body);
    assert_eq!(body[0]["shard"], 3);
    assert_eq!(body[0]["node"], "meili-0");
}

#[tokio::test]
async fn key_value_data_is_namespaced_per_plugin() {
    // Keys reach the host under the plugin's configured name, not the manifest's.
    let (runtime, host) = load(vec![hooks_spec("first")]).await;
    let put = runtime.handle(request("POST", "/_miroir/x/test/kv?key=colour", b"blue")).await;
    assert_eq!(put.expect("put").status, 200);
    assert_eq!(host.kv_value("first", "colour").as_deref(), Some(&b"blue"[..]));
    assert_eq!(host.kv_value("other", "colour"), None);

    let got = runtime.handle(request("GET", "/_miroir/x/test/kv?key=colour", b"")).await.unwrap();
    assert_eq!(json(&got.body)["value"], "blue");
    let listed =
        runtime.handle(request("GET", "/_miroir/x/test/kv-list?prefix=col", b"")).await.unwrap();
    assert_eq!(json(&listed.body)["keys"], json!(["colour"]));
    runtime.handle(request("DELETE", "/_miroir/x/test/kv?key=colour", b"")).await.unwrap();
    assert_eq!(host.kv_value("first", "colour"), None);
}

#[tokio::test]
async fn log_metrics_clock_and_random_imports_work() {
    let (runtime, host) = load(vec![hooks_spec("hooks")]).await;
    let response = runtime.handle(request("GET", "/_miroir/x/test/misc", b"")).await.unwrap();
    let body = json(&response.body);
    assert_eq!(body["random_len"], 16);
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as u64;
    assert!(body["now_ms"].as_u64().unwrap().abs_diff(now_ms) < 60_000);
    let metrics = host.metrics();
    assert!(metrics.iter().any(|(plugin, m)| plugin == "hooks"
        && m.name == "misc_calls"
        && m.kind == MetricKind::Counter(1)
        && m.labels == vec![("route".to_owned(), "misc".to_owned())]));
    assert!(metrics.iter().any(|(_, m)| m.kind == MetricKind::Gauge(42.0)));
}

#[tokio::test]
async fn plan_and_merge_search_hooks_rewrite_and_merge() {
    let (runtime, _host) = load(vec![hooks_spec("hooks")]).await;
    assert!(runtime.has_hook(Hook::PlanSearch));
    let search = SearchRoute::Search;
    let planned = runtime.plan_search("movies", search, &json!({ "q": "dune" }), None).await;
    assert_eq!(
        planned.expect("plan"),
        SearchPlan::Rewrite {
            request: json!({ "q": "dune", "planned": true }),
            merged_by: Some("hooks".into())
        }
    );

    let rejected =
        runtime.plan_search("movies", search, &json!({ "reject": true }), None).await.unwrap_err();
    assert_eq!(rejected.status(), 400, "a hook error keeps the plugin's status: {rejected}");
    assert!(!rejected.is_failure());

    let shard = |n: u32, ids: &[u64]| ShardAnswer {
        shard: n,
        node: format!("node-{n}"),
        status: 200,
        body: json!({ "hits": ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
                      "estimatedTotalHits": ids.len() }),
        took: Duration::from_millis(1),
    };
    let merged = runtime
        .merge_search(
            "hooks",
            "movies",
            &json!({ "q": "dune" }),
            &[shard(0, &[1, 2]), shard(1, &[3])],
        )
        .await
        .expect("a plugin merges")
        .expect("merge");
    assert_eq!(merged["estimatedTotalHits"], 3);
    assert_eq!(merged["hits"].as_array().unwrap().len(), 3);
    assert_eq!(merged["query"], "dune");
}

/// A copy of the test plugin with only `hooks`, and no route (so that several load together).
fn hooks_only(name: &str, hooks: &[&str]) -> PluginSpec {
    PluginSpec {
        config: json!({ "routes": false, "hooks": hooks }),
        ..spec(name, "test_hooks.wasm", 2000, 64)
    }
}

#[tokio::test]
async fn the_first_plugin_that_does_not_decline_takes_the_search() {
    let specs = vec![
        hooks_only("first", &["plan-search"]),
        hooks_only("merger", &["merge-search"]),
        hooks_only("last", &["plan-search", "merge-search"]),
    ];
    let (runtime, host) = load(specs).await;
    let search = SearchRoute::Search;
    let plan = |request: serde_json::Value, caller: Option<&'static str>| {
        let runtime = &runtime;
        async move { runtime.plan_search("movies", search, &request, caller).await.expect("plan") }
    };
    // `first` rewrites; it has no merge-search, so the default merge applies.
    assert_eq!(
        plan(json!({ "q": "a" }), None).await,
        SearchPlan::Rewrite { request: json!({ "q": "a", "planned": true }), merged_by: None }
    );
    // `first` declines: `merger` (merge-search only) takes it unchanged, `last` is not asked.
    assert_eq!(
        plan(json!({ "decline": true }), None).await,
        SearchPlan::Rewrite {
            request: json!({ "decline": true }),
            merged_by: Some("merger".into())
        }
    );
    // An answer comes back with its headers.
    let SearchPlan::Answer { body, headers } = plan(json!({ "answer": true }), None).await else {
        panic!("an answer")
    };
    assert_eq!(
        (body["answeredBy"].clone(), body["index"].clone()),
        (json!("test-hooks"), json!("movies"))
    );
    assert_eq!(headers, vec![("x-test-hooks".to_owned(), "answered".to_owned())]);
    // The plugin running the search through its own `search` import is skipped.
    assert_eq!(
        plan(json!({ "q": "a" }), Some("first")).await,
        SearchPlan::Rewrite { request: json!({ "q": "a" }), merged_by: Some("merger".into()) }
    );
    let calls: Vec<String> = host.calls().iter().map(|(p, h, _)| format!("{p}:{h}")).collect();
    assert!(!calls.iter().any(|c| c == "last:plan-search"), "never asked: {calls:?}");
    // `similar` is not merged by merge-search: a merge-only plugin does not take it, and every
    // plan-search here declines it.
    let similar = json!({ "id": 1 });
    let plan = runtime.plan_search("movies", SearchRoute::Similar, &similar, None).await;
    assert_eq!(plan.expect("plan"), SearchPlan::Decline);
}

#[tokio::test]
async fn off_path_hooks_are_delivered() {
    let (runtime, host) = load(vec![hooks_spec("hooks")]).await;
    let timing = Timing { started_at_ms: 1, total_us: 1234 };
    let search = request("POST", "/indexes/movies/search", b"{}");
    let answer = miroir_plugins::Response { status: 200, headers: vec![], body: b"{}".to_vec() };
    let report = runtime.after_response(&search, &answer, timing).await;
    assert_eq!((report.called, report.failures.len()), (1, 0));
    let event = WriteEvent {
        event_id: "ev-1".into(),
        task_uid: 7,
        index: "movies".into(),
        operation: "documentAdditionOrUpdate".into(),
        primary_keys: vec!["1".into()],
        shards: vec![0],
        timestamp_ms: 1,
        partial_update: false,
        documents: None,
    };
    assert_eq!(runtime.on_write(&event).await.called, 1);
    assert_eq!(runtime.tick().await.called, 1);

    let events: serde_json::Value =
        serde_json::from_slice(&host.kv_value("hooks", "events").expect("events")).unwrap();
    assert_eq!(
        events,
        json!([
            { "hook": "after-response", "path": "/indexes/movies/search", "status": 200, "total_us": 1234 },
            { "hook": "on-write", "event_id": "ev-1", "task_uid": 7, "index": "movies",
              "operation": "documentAdditionOrUpdate", "primary_keys": ["1"], "shards": [0] },
            { "hook": "tick" }
        ])
    );
}

#[tokio::test]
async fn a_plugin_refusing_its_config_fails_at_boot() {
    let spec = PluginSpec { config: json!({ "fail_init": true }), ..hooks_spec("hooks") };
    let error = PluginRuntime::load(vec![spec], Arc::new(InMemoryHost::new())).await.unwrap_err();
    assert!(matches!(error, LoadError::Start { .. }), "{error}");
    assert!(error.to_string().contains("asked to fail"), "{error}");
}

#[tokio::test]
async fn two_plugins_claiming_one_route_fail_at_boot() {
    let error = PluginRuntime::load(
        vec![hooks_spec("first"), hooks_spec("second")],
        Arc::new(InMemoryHost::new()),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, LoadError::RouteConflict { .. }), "{error}");
}

#[tokio::test]
async fn a_missing_component_fails_at_boot_naming_it() {
    let error = PluginRuntime::load(
        vec![PluginSpec::new("ghost", "/nonexistent/ghost.wasm")],
        Arc::new(InMemoryHost::new()),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ghost.wasm"), "{error}");
}

#[tokio::test]
async fn the_compiled_artifact_is_cached_next_to_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("test_hooks.wasm");
    std::fs::copy(component("test_hooks.wasm"), &copy).unwrap();
    let spec = PluginSpec::new("hooks", &copy);
    let first = PluginRuntime::load(vec![spec.clone()], Arc::new(InMemoryHost::new())).await;
    assert!(first.is_ok());
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wasm.cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "one artifact beside the component: {cached:?}");
    assert!(cached[0].starts_with("test_hooks-"));
    let modified = std::fs::metadata(dir.path().join(&cached[0])).unwrap().modified().unwrap();

    // A second load uses the artifact: it is not rewritten.
    let second = PluginRuntime::load(vec![spec], Arc::new(InMemoryHost::new())).await.unwrap();
    assert_eq!(second.plugin_names(), vec!["hooks"]);
    let again = std::fs::metadata(dir.path().join(&cached[0])).unwrap().modified().unwrap();
    assert_eq!(modified, again);
}

#[tokio::test]
async fn the_example_plugin_is_enabled_by_one_config_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("miroir.yaml");
    let yaml = format!(
        "nodes:\n  - {{ id: meili-0, address: \"http://127.0.0.1:7700\", replica_group: a }}\n\
         plugins:\n  custom:\n    - {{ name: top-facets, component: {}, enabled: true, config: {{ size: 2 }} }}\n",
        component("top_facets.wasm").display()
    );
    std::fs::write(&file, yaml).unwrap();
    let config = miroir_config::Config::load(Some(&file)).expect("valid config");
    let host = Arc::new(InMemoryHost::new().with_index(
        "movies",
        json!({
            "hits": [],
            "estimatedTotalHits": 10,
            "facetDistribution": { "genre": { "drama": 5, "comedy": 3, "horror": 2 } }
        }),
        Vec::new(),
    ));
    let runtime = PluginRuntime::from_config(&config, host).await.expect("load");
    assert_eq!(runtime.route_owner("GET", "/_miroir/x/top-facets"), Some("top-facets"));
    let response = runtime
        .handle(request("GET", "/_miroir/x/top-facets?index=movies&facet=genre", b""))
        .await
        .expect("top-facets");
    assert_eq!(response.status, 200);
    assert_eq!(
        json(&response.body)["topFacets"]["genre"],
        json!([{ "value": "drama", "count": 5 }, { "value": "comedy", "count": 3 }])
    );
    let missing =
        runtime.handle(request("GET", "/_miroir/x/top-facets?index=nope", b"")).await.unwrap();
    assert_eq!(missing.status, 404);
}
