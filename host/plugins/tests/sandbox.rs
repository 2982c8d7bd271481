//! The sandbox: deadlines, memory caps, traps and outbound HTTP policy, with real components.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{json, load, request, spec};
use miroir_plugins::{PluginError, PluginSpec};
use miroir_types::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BAD: &str = "test_misbehave.wasm";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_looping_plugin_hits_its_deadline_while_other_calls_are_served() {
    let deadline = Duration::from_millis(400);
    let (runtime, _host) = load(vec![
        spec("bad", BAD, deadline.as_millis() as u64, 32),
        spec("hooks", "test_hooks.wasm", 2000, 32),
    ])
    .await;
    let runtime = Arc::new(runtime);

    let looping = {
        let runtime = Arc::clone(&runtime);
        tokio::spawn(async move {
            let started = Instant::now();
            let result = runtime.handle(request("GET", "/_miroir/x/bad/loop", b"")).await;
            (result, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;

    // While the loop runs, the same plugin (another instance) and another plugin keep answering.
    let mut served = 0;
    while !looping.is_finished() {
        let started = Instant::now();
        let ok = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.expect("ok");
        assert_eq!(ok.status, 200);
        let echo = runtime.handle(request("GET", "/_miroir/x/test/echo", b"")).await.expect("echo");
        assert_eq!(echo.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "served late: {:?}",
            started.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(served >= 5, "only {served} calls were served during the loop");

    let (result, elapsed) = looping.await.unwrap();
    let error = result.unwrap_err();
    assert!(matches!(error, PluginError::DeadlineExceeded { deadline_ms: 400, .. }), "{error}");
    assert_eq!(error.error_code(), Some(ErrorCode::MiroirPluginFailed));
    assert_eq!(error.status(), 502);
    assert!(elapsed >= deadline, "stopped early: {elapsed:?}");
    // One 10 ms epoch tick after the deadline, plus slack for a busy CI machine.
    assert!(elapsed < deadline + Duration::from_millis(300), "stopped late: {elapsed:?}");
    assert_eq!(runtime.stats("bad").unwrap().failures, 1);
}

#[tokio::test]
async fn a_plugin_allocating_past_its_cap_fails_its_call_and_the_runtime_survives() {
    let (runtime, _host) = load(vec![spec("bad", BAD, 5000, 16)]).await;
    let started = Instant::now();
    let error = runtime.handle(request("GET", "/_miroir/x/bad/alloc", b"")).await.unwrap_err();
    assert!(matches!(error, PluginError::MemoryExceeded { memory_mb: 16, .. }), "{error}");
    assert_eq!(error.status(), 502);
    assert!(started.elapsed() < Duration::from_secs(4), "memory cap took {:?}", started.elapsed());

    let ok = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.expect("next call");
    assert_eq!(json(&ok.body)["calls"], 1, "a fresh instance replaced the failed one");
}

#[tokio::test]
async fn a_trap_fails_only_that_call_and_the_next_call_works() {
    let (runtime, _host) = load(vec![spec("bad", BAD, 2000, 32)]).await;
    let first = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.unwrap();
    assert_eq!(json(&first.body)["calls"], 1);
    let second = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.unwrap();
    assert_eq!(json(&second.body)["calls"], 2, "a healthy instance is reused");

    let error = runtime.handle(request("GET", "/_miroir/x/bad/trap", b"")).await.unwrap_err();
    assert!(matches!(error, PluginError::Trapped { .. }), "{error}");
    assert_eq!(error.error_code(), Some(ErrorCode::MiroirPluginFailed));

    let after = runtime.handle(request("GET", "/_miroir/x/bad/ok", b"")).await.expect("next call");
    assert_eq!(json(&after.body)["calls"], 1, "the trapped instance was replaced");
    let stats = runtime.stats("bad").unwrap();
    assert_eq!((stats.calls, stats.failures), (5, 1), "{stats:?}");
}

/// A one-route HTTP server on 127.0.0.1 that counts the connections it accepts.
async fn tiny_server(body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (origin, connections)
}

#[tokio::test]
async fn a_plugin_reaches_only_the_http_targets_its_config_names() {
    let (allowed, allowed_hits) = tiny_server("allowed").await;
    let (forbidden, forbidden_hits) = tiny_server("forbidden").await;
    let bad =
        PluginSpec { http_targets: vec![format!("{allowed}/")], ..spec("bad", BAD, 2000, 32) };
    let (runtime, _host) = load(vec![bad]).await;

    let ok = runtime
        .handle(request("GET", &format!("/_miroir/x/bad/http?url={allowed}/anything"), b""))
        .await
        .unwrap();
    assert_eq!(json(&ok.body), serde_json::json!({ "status": 200 }));
    assert_eq!(allowed_hits.load(Ordering::SeqCst), 1);

    for url in [
        format!("{forbidden}/x"),
        "http://example.com/".to_owned(),
        "file:///etc/passwd".to_owned(),
        format!("{}/x", allowed.replace("127.0.0.1", "localhost")),
    ] {
        let refused = runtime
            .handle(request("GET", &format!("/_miroir/x/bad/http?url={url}"), b""))
            .await
            .unwrap();
        assert_eq!(refused.status, 502, "{url}");
        assert_eq!(json(&refused.body)["code"], "http_target_not_allowed", "{url}");
    }
    assert_eq!(forbidden_hits.load(Ordering::SeqCst), 0, "the refused target saw no connection");
}

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_message_reaches_the_host_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (runtime, _host) = load(vec![spec("bad", BAD, 2000, 32)]).await;
    let error = runtime.handle(request("GET", "/_miroir/x/bad/trap", b"")).await.unwrap_err();
    assert!(matches!(error, PluginError::Trapped { .. }), "{error}");

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("plugin panicked") && log.contains("asked to trap"), "{log}");
    assert!(log.contains("plugin=\"bad\"") || log.contains("plugin=bad"), "{log}");
}
