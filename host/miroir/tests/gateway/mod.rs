//! One `miroir serve` process with a SQLite task store in front of development nodes, for the
//! tests that need the whole binary (plugins, background loops).

#![allow(dead_code)] // each test binary uses its own part of this harness

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `make plugins` puts the components (`target/plugins`); fails when `component` is not
/// there.
pub fn plugins_dir(component: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("plugins");
    assert!(
        dir.join(component).exists(),
        "{} is missing: run `make plugins` first",
        dir.join(component).display()
    );
    dir
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// A running `miroir serve`; killed when dropped.
pub struct Gateway {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The port it listens on.
    pub port: u16,
}

impl Gateway {
    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `limit` for the process to exit; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll miroir") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Gateway {
    /// Writes `config` (YAML without the `server` and `task_store` sections, which this adds)
    /// to `dir`, starts `miroir serve` there with `master_key` and `node_key`, and waits until
    /// it answers `/health` (at most 60 s).
    pub fn start(dir: &Path, config: &str, master_key: &str, node_key: &str) -> Self {
        Self::start_with_server(dir, "", config, master_key, node_key)
    }

    /// [`Gateway::start`] with more `server` keys, written as flow-mapping entries
    /// (`"max_concurrent_requests: 2, queue_timeout: 300ms"`).
    pub fn start_with_server(
        dir: &Path,
        server: &str,
        config: &str,
        master_key: &str,
        node_key: &str,
    ) -> Self {
        let server = if server.is_empty() { String::new() } else { format!(", {server}") };
        Self::start_whole(dir, "miroir", master_key, node_key, |port| {
            format!(
                "server: {{ bind: 127.0.0.1, port: {port}{server} }}\ntask_store: {{ path: miroir.db }}\n{config}"
            )
        })
    }

    /// Starts `miroir serve` in `dir` with the whole configuration `config(port)` written to
    /// `<name>.yaml`, and waits until it answers `/health` (at most 60 s).
    pub fn start_whole(
        dir: &Path,
        name: &str,
        master_key: &str,
        node_key: &str,
        config: impl FnOnce(u16) -> String,
    ) -> Self {
        Self::start_whole_with_env(dir, name, master_key, node_key, &[], config)
    }

    /// [`Gateway::start_whole`] with more environment variables for the process.
    pub fn start_whole_with_env(
        dir: &Path,
        name: &str,
        master_key: &str,
        node_key: &str,
        env: &[(&str, &str)],
        config: impl FnOnce(u16) -> String,
    ) -> Self {
        let port = free_port();
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, config(port)).expect("write config");
        // The log stays beside the config, for a failing test to be read.
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_miroir"))
            .current_dir(dir)
            .args(["serve", "--config"])
            .arg(&path)
            .env("MIROIR_MASTER_KEY", master_key)
            .env("MIROIR_NODE_MASTER_KEY", node_key)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start miroir");
        let gateway = Gateway { child, base: format!("http://127.0.0.1:{port}"), port };
        let probe = reqwest::blocking::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while probe.get(format!("{}/health", gateway.base)).send().is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join(format!("{name}.log")));
                panic!("miroir did not start:\n{}", log.unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `method url` with `key` as bearer token and an optional JSON `body`; status and body.
pub fn send(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    key: &str,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let mut request = client
        .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url)
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("an answer");
    let status = response.status().as_u16();
    (status, response.text().expect("body"))
}

/// The `nodes:` section for `urls`, all in replica group `g`, named `n0`, `n1`...
pub fn nodes_section(urls: impl IntoIterator<Item = String>) -> String {
    let mut section = String::from("nodes:\n");
    for (i, url) in urls.into_iter().enumerate() {
        section.push_str(&format!("  - {{ id: n{i}, address: \"{url}\", replica_group: g }}\n"));
    }
    section
}

/// The JSON body of an answer from [`send`] (`null` when it is not JSON).
pub fn json_of(answer: (u16, String)) -> serde_json::Value {
    serde_json::from_str(&answer.1).unwrap_or(serde_json::Value::Null)
}

/// Polls `check` every 50 ms for at most `limit`; fails naming `what`.
pub fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most 60 s) until the Miroir task of a 202 `answer` succeeded; fails if it failed.
pub fn wait_task(client: &reqwest::blocking::Client, base: &str, key: &str, answer: (u16, String)) {
    assert_eq!(answer.0, 202, "{}", answer.1);
    let uid = json_of(answer)["taskUid"].as_u64().expect("task uid");
    wait_for(Duration::from_secs(60), "a Miroir task", || {
        let task = json_of(send(client, "GET", &format!("{base}/tasks/{uid}"), key, None));
        assert_ne!(task["status"], "failed", "{task}");
        task["status"] == "succeeded"
    });
}
