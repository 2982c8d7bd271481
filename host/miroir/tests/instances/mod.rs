//! Real `miroir serve` processes on one Redis task store, for the leader and fencing tests.

#![allow(dead_code)] // each test binary uses its own part of this harness

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_KEY: &str = "leader-test-admin-key";

/// The Redis URL CI provides; without it the test fails in CI and is skipped elsewhere.
pub fn redis_url() -> Option<String> {
    match std::env::var("MIROIR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("MIROIR_TEST_REDIS_URL must be set in CI"),
        _ => {
            eprintln!("MIROIR_TEST_REDIS_URL is not set: test skipped");
            None
        }
    }
}

/// A key prefix no other test run shares.
pub fn fresh_prefix(test: &str) -> String {
    format!("miroir-{test}-test-{}:", std::process::id())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// One `miroir serve` process: 2-second leases renewed every 500 ms, Redis task store.
pub struct Instance {
    pub name: String,
    pub port: u16,
    pub child: Child,
}

impl Instance {
    /// Starts an instance; `task_store_extra` is appended inside the `task_store` section
    /// (e.g. `"prune_batch_size: 5"`), empty for none.
    pub fn start(
        dir: &Path,
        name: &str,
        redis: &str,
        prefix: &str,
        task_store_extra: &str,
    ) -> Self {
        let leader = "leader: { lease_ttl: 2s, renew_interval: 500ms }";
        Self::start_with_leader(dir, name, redis, prefix, task_store_extra, leader)
    }

    /// [`Instance::start`] with another `leader` section (a whole YAML line).
    pub fn start_with_leader(
        dir: &Path,
        name: &str,
        redis: &str,
        prefix: &str,
        task_store_extra: &str,
        leader: &str,
    ) -> Self {
        let port = free_port();
        let extra = if task_store_extra.is_empty() {
            String::new()
        } else {
            format!(", {task_store_extra}")
        };
        let config = format!(
            "nodes:\n  - {{ id: n0, address: \"http://127.0.0.1:9\", replica_group: g }}\n\
             server: {{ bind: 127.0.0.1, port: {port} }}\n\
             metrics: {{ enabled: false }}\n\
             replicas: 2\n\
             instance_id: {name}\n\
             task_store: {{ backend: redis, url: \"{redis}\", key_prefix: \"{prefix}\"{extra} }}\n\
             {leader}\n"
        );
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config).expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_miroir"))
            .args(["serve", "--config"])
            .arg(&path)
            .env("MIROIR_ADMIN_API_KEY", ADMIN_KEY)
            .env_remove("MIROIR_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start miroir serve");
        Self { name: name.to_owned(), port, child }
    }

    fn admin_get(&self, path: &str) -> Option<reqwest::blocking::Response> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let resp = client
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .bearer_auth(ADMIN_KEY)
            .send()
            .ok()?;
        resp.status().is_success().then_some(resp)
    }

    /// `GET /_miroir/leader`, or None while the instance does not answer.
    pub fn leader(&self) -> Option<Value> {
        self.admin_get("/_miroir/leader")?.json().ok()
    }

    /// The value of the sample `series` (name with labels, as exposed) in
    /// `GET /_miroir/metrics`: 0 when the series is not exposed yet, None while the instance
    /// does not answer.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let text = self.admin_get("/_miroir/metrics")?.text().ok()?;
        let value = text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().expect("a numeric sample"))
        });
        Some(value.unwrap_or(0.0))
    }

    /// Sends `signal` (`-STOP`, `-CONT`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {}", self.name);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll until `check` returns Some, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The fencing token of a leader's `/_miroir/leader` answer.
pub fn token(state: &Value) -> u64 {
    state["fencing_token"].as_u64().expect("a leader has a fencing token")
}

/// Both instances answer and exactly one leads; returns (leader, follower).
pub fn one_leader(a: Instance, b: Instance, limit: Duration) -> (Instance, Instance) {
    let a_leads = wait_for(limit, || {
        let (sa, sb) = (a.leader()?, b.leader()?);
        let leaders = [&sa, &sb].iter().filter(|s| s["is_leader"] == true).count();
        (leaders == 1 && sa["leader"] == sb["leader"] && sa["leader"].is_string())
            .then_some(sa["is_leader"] == true)
    })
    .expect("one leader");
    if a_leads {
        (a, b)
    } else {
        (b, a)
    }
}
