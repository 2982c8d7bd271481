//! The host drives `tick` on a timer, off every client's path, with real components.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{json, load, request, spec};
use miroir_plugins::PluginSpec;

/// How many `tick` events plugin `name` recorded in its key-value store.
fn ticks(host: &miroir_plugins::InMemoryHost, name: &str) -> usize {
    let Some(bytes) = host.kv_value(name, "events") else { return 0 };
    let events: serde_json::Value = serde_json::from_slice(&bytes).expect("events are JSON");
    events.as_array().expect("a list").iter().filter(|e| e["hook"] == "tick").count()
}

/// Waits (at most 10 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_advance_on_the_configured_interval_and_stop_with_their_task() {
    let (runtime, host) = load(vec![spec("hooks", "test_hooks.wasm", 2000, 32)]).await;
    let runtime = Arc::new(runtime);
    let task = runtime.start_ticks(Duration::from_millis(20)).expect("test-hooks declares tick");

    eventually("three ticks", || ticks(&host, "hooks") >= 3).await;
    let seen = ticks(&host, "hooks");
    eventually("more ticks", || ticks(&host, "hooks") > seen).await;

    drop(task);
    // A tick already running when the task is dropped may still finish: let it, then the count
    // must stay put over several intervals.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let stopped = ticks(&host, "hooks");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ticks(&host, "hooks"), stopped, "ticks continued after the task was dropped");
    assert_eq!(runtime.stats("hooks").unwrap().failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_past_its_deadline_is_counted_and_the_plugin_keeps_serving() {
    let looping = PluginSpec {
        config: serde_json::json!({ "tick": "loop" }),
        ..spec("bad", "test_misbehave.wasm", 100, 16)
    };
    let (runtime, _host) = load(vec![looping]).await;
    let runtime = Arc::new(runtime);
    let _task = runtime.start_ticks(Duration::from_millis(20)).expect("declares tick");

    eventually("two failed ticks", || runtime.stats("bad").unwrap().failures >= 2).await;
    // Client calls are still served, each by a healthy instance.
    let ok = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.expect("served");
    assert_eq!(ok.status, 200);
    assert!(json(&ok.body)["calls"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_tick_is_counted_and_ticks_go_on() {
    let trapping = PluginSpec {
        config: serde_json::json!({ "tick": "trap" }),
        ..spec("bad", "test_misbehave.wasm", 1000, 16)
    };
    let (runtime, _host) = load(vec![trapping]).await;
    let runtime = Arc::new(runtime);
    let report = runtime.tick().await;
    assert_eq!((report.called, report.failures.len()), (1, 1));
    let _task = runtime.start_ticks(Duration::from_millis(20)).expect("declares tick");
    eventually("three failed ticks", || runtime.stats("bad").unwrap().failures >= 3).await;
    let ok = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.expect("served");
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn without_a_tick_hook_no_task_is_started() {
    let (runtime, _host) = load(vec![spec("bad", "test_misbehave.wasm", 1000, 16)]).await;
    assert!(Arc::new(runtime).start_ticks(Duration::from_millis(20)).is_none());
}
