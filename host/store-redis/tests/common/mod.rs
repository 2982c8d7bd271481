//! Test helpers: the shared test server's URL, unique key prefixes, and a private
//! `redis-server` child process.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The URL of the shared test server from `MIROIR_TEST_REDIS_URL`. Without it the test fails
/// when `CI` is set and is skipped (with a notice) otherwise.
pub fn test_url() -> Option<String> {
    match std::env::var("MIROIR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("MIROIR_TEST_REDIS_URL must point at a Redis server when CI is set")
        }
        _ => {
            notice("skipping Redis tests: set MIROIR_TEST_REDIS_URL (e.g. redis://127.0.0.1:6390)");
            None
        }
    }
}

/// Prints `text` once per test binary, past the test harness's output capture so the skip is
/// visible in a passing run.
pub fn notice(text: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    });
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("miroir-test:{}:{nanos}:{n}:", std::process::id())
}

/// A `redis-server` this test started, killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` (path from `MIROIR_TEST_REDIS_SERVER`, default on PATH) on a free
    /// loopback port without persistence. `None` (with a notice) when it is not installed,
    /// unless `CI` is set.
    pub fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port)
    }

    /// Starts a server on `port`.
    pub fn start_on(port: u16) -> Option<Self> {
        let bin =
            std::env::var("MIROIR_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if std::env::var_os("CI").is_some() => panic!("cannot start {bin}: {e}"),
            Err(e) => {
                notice(&format!(
                    "skipping: cannot start {bin} ({e}); set MIROIR_TEST_REDIS_SERVER"
                ));
                return None;
            }
        };
        let server = RedisServer { port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
