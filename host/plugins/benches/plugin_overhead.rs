//! Plugin call overhead and memory, with the real components `make plugins` builds.
//!
//! Run: `make plugins && cargo bench -p miroir-plugins --bench plugin_overhead`.
//!
//! - hook call overhead: `handle` on a route that answers 204 at once, with 1 KiB and 64 KiB
//!   bodies, through a pooled (reused) instance; `plan-search` with a 1 KiB JSON request, called
//!   on the runtime and through the gateway's hook port; `merge-search` of eight shard answers
//!   of 1 KiB in all; and what the request path pays with no hook (the `NoHooks` port's check).
//! - memory: the resident set of a child process with every plugin disabled, and with one plugin
//!   enabled from its precompiled artifact (the artifact is written by a first, untimed child).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miroir_plugins::{InMemoryHost, PluginRuntime, PluginSpec, Request, ShardAnswer};
use miroir_types::{HookPort, NoHooks, SearchRoute};

fn plugins_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MIROIR_PLUGINS_DIR") {
        return PathBuf::from(dir);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { workspace.join(t) })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("plugins")
}

fn component(file: &str) -> PathBuf {
    let path = plugins_dir().join(file);
    if !path.is_file() {
        eprintln!("{} is missing: run `make plugins` first", path.display());
        std::process::exit(2);
    }
    path
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn noop(body: Vec<u8>) -> Request {
    Request {
        method: "POST".into(),
        path: "/_miroir/x/test/noop".into(),
        query: String::new(),
        headers: Vec::new(),
        body,
    }
}

/// Mean, median and 99th percentile of `iterations` calls of `f`, after a warm-up.
async fn measure<F, Fut>(iterations: usize, mut f: F) -> (Duration, Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..iterations / 10 {
        f().await;
    }
    let mut samples = Vec::with_capacity(iterations);
    let started = Instant::now();
    for _ in 0..iterations {
        let one = Instant::now();
        f().await;
        samples.push(one.elapsed());
    }
    let mean = started.elapsed() / iterations as u32;
    samples.sort();
    (mean, samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

async fn call_overhead() {
    let spec = PluginSpec::new("hooks", component("test_hooks.wasm"));
    let runtime = PluginRuntime::load(vec![spec], Arc::new(InMemoryHost::new()))
        .await
        .expect("test-hooks loads");
    for (label, size, iterations) in [("1 KiB", 1024, 20_000), ("64 KiB", 64 * 1024, 5_000)] {
        let body = vec![b'x'; size];
        let (mean, p50, p99) = measure(iterations, || {
            let request = noop(body.clone());
            let runtime = &runtime;
            async move {
                let response = runtime.handle(request).await.expect("noop");
                assert_eq!(response.status, 204);
            }
        })
        .await;
        println!("handle, {label} body:  mean {mean:>9.2?}  p50 {p50:>9.2?}  p99 {p99:>9.2?}");
        // The part of that which is the cost of building the request outside the plugin.
        let (clone_mean, _, _) = measure(iterations, || {
            let request = noop(body.clone());
            async move {
                std::hint::black_box(request);
            }
        })
        .await;
        println!("  (building the request alone: mean {clone_mean:>9.2?})");
    }
    let text = "y".repeat(1024 - 16);
    let request = serde_json::json!({ "q": text });
    let (mean, p50, p99) = measure(20_000, || {
        let runtime = &runtime;
        let request = request.clone();
        async move {
            runtime.plan_search("movies", SearchRoute::Search, &request, None).await.expect("plan");
        }
    })
    .await;
    println!("plan-search, 1 KiB JSON: mean {mean:>9.2?}  p50 {p50:>9.2?}  p99 {p99:>9.2?}");

    let port = Arc::new(runtime).hook_port();
    let (mean, p50, p99) = measure(20_000, || {
        let port = &port;
        let request = request.clone();
        async move {
            port.plan_search("movies", SearchRoute::Search, &request, None).await.expect("plan");
        }
    })
    .await;
    println!("plan-search via the hook port, 1 KiB JSON: mean {mean:>9.2?}  p50 {p50:>9.2?}  p99 {p99:>9.2?}");
    let answers: Vec<ShardAnswer> = (0..8)
        .map(|shard| ShardAnswer {
            shard,
            node: "n1".into(),
            status: 200,
            body: serde_json::json!({ "hits": [{ "id": shard, "title": "z".repeat(64) }],
                                      "estimatedTotalHits": 1 }),
            took: Duration::from_micros(100),
        })
        .collect();
    let client = serde_json::json!({ "q": "dune" });
    let (mean, p50, p99) = measure(20_000, || {
        let (port, answers, client) = (&port, answers.clone(), &client);
        async move {
            let merged = port.merge_search("hooks", "movies", client, answers).await;
            merged.expect("declared").expect("merged");
        }
    })
    .await;
    println!("merge-search, 8 shards, ~1 KiB: mean {mean:>9.2?}  p50 {p50:>9.2?}  p99 {p99:>9.2?}");

    // With no hook, the request path asks the port one question per request.
    let none: Arc<dyn HookPort> = Arc::new(NoHooks);
    let rounds = 10_000_000u32;
    let started = Instant::now();
    let mut hooked = 0u32;
    for _ in 0..rounds {
        hooked += u32::from(std::hint::black_box(&none).hooks().searches());
    }
    assert_eq!(hooked, 0);
    println!("no hook (NoHooks check per request): {:>9.2?}", started.elapsed() / rounds);
}

/// Child process: report the resident set after loading `mode`'s plugins and serving one call.
fn rss_child(mode: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    rt.block_on(async {
        let specs = match mode {
            "disabled" => Vec::new(),
            _ => vec![PluginSpec::new("top-facets", component("top_facets.wasm"))],
        };
        let runtime =
            PluginRuntime::load(specs, Arc::new(InMemoryHost::new())).await.expect("load");
        if runtime.engine_created() {
            let request = Request {
                method: "GET".into(),
                path: "/_miroir/x/top-facets".into(),
                query: "index=movies".into(),
                headers: Vec::new(),
                body: Vec::new(),
            };
            let _ = runtime.handle(request).await.expect("call");
        }
        println!("{}", rss_kib());
    });
}

fn child_rss(mode: &str) -> u64 {
    let exe = std::env::current_exe().expect("own path");
    let output = Command::new(exe).args(["rss-child", mode]).output().expect("child runs");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "rss-child") {
        rss_child(args.get(position + 1).map(String::as_str).unwrap_or("disabled"));
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    println!("== hook call overhead (pooled instance, current-thread runtime)");
    rt.block_on(call_overhead());

    println!("== resident memory (child processes)");
    let _warm = child_rss("enabled"); // compiles and caches the artifact, untimed
    let disabled = child_rss("disabled");
    let enabled = child_rss("enabled");
    println!("every plugin disabled:        {:>7.1} MiB", disabled as f64 / 1024.0);
    println!("one plugin, precompiled:      {:>7.1} MiB", enabled as f64 / 1024.0);
    println!(
        "added by the plugin:          {:>7.1} MiB",
        (enabled as f64 - disabled as f64) / 1024.0
    );
}
