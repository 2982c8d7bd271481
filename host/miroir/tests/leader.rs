//! Two `miroir serve` processes on one Redis: exactly one leads; when the leader's process is
//! killed the other takes over within the lease TTL with a larger fencing token; a leader that
//! was frozen past its lease steps down as soon as it runs again.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ADMIN_KEY: &str = "leader-test-admin-key";

/// The Redis URL CI provides; without it the test fails in CI and is skipped elsewhere.
fn redis_url() -> Option<String> {
    match std::env::var("MIROIR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("MIROIR_TEST_REDIS_URL must be set in CI"),
        _ => {
            eprintln!("MIROIR_TEST_REDIS_URL is not set: leader election test skipped");
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

struct Instance {
    name: String,
    port: u16,
    child: Child,
}

impl Instance {
    fn start(dir: &Path, name: &str, redis: &str, prefix: &str) -> Self {
        let port = free_port();
        let config = format!(
            "nodes:\n  - {{ id: n0, address: \"http://127.0.0.1:9\", replica_group: g }}\n\
             server: {{ bind: 127.0.0.1, port: {port} }}\n\
             metrics: {{ enabled: false }}\n\
             replicas: 2\n\
             instance_id: {name}\n\
             task_store: {{ backend: redis, url: \"{redis}\", key_prefix: \"{prefix}\" }}\n\
             leader: {{ lease_ttl: 2s, renew_interval: 500ms }}\n"
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

    /// `GET /_miroir/leader`, or None while the instance does not answer.
    fn leader(&self) -> Option<Value> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let resp = client
            .get(format!("http://127.0.0.1:{}/_miroir/leader", self.port))
            .bearer_auth(ADMIN_KEY)
            .send()
            .ok()?;
        resp.json().ok()
    }

    fn signal(&self, signal: &str) {
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
fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn token(state: &Value) -> u64 {
    state["fencing_token"].as_u64().expect("a leader has a fencing token")
}

#[test]
fn one_leader_and_takeover_within_the_lease_ttl() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("miroir-leader-test-{}:", std::process::id());
    let mut a = Instance::start(dir.path(), "inst-a", &redis, &prefix);
    let mut b = Instance::start(dir.path(), "inst-b", &redis, &prefix);

    // Exactly one leader, and both agree on who it is.
    let (first, second) = wait_for(Duration::from_secs(15), || {
        let (sa, sb) = (a.leader()?, b.leader()?);
        let leaders = [&sa, &sb].iter().filter(|s| s["is_leader"] == true).count();
        (leaders == 1 && sa["leader"] == sb["leader"] && sa["leader"].is_string())
            .then_some((sa, sb))
    })
    .expect("one leader within 15 s");
    assert_eq!(first["instance"], "inst-a");
    let anonymous = reqwest::blocking::get(format!("http://127.0.0.1:{}/_miroir/leader", a.port))
        .expect("request without the admin key");
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().expect("error body");
    assert_eq!(body["code"], "miroir_invalid_auth");
    assert_eq!(second["instance"], "inst-b");
    let a_leads = first["is_leader"] == true;
    if !a_leads {
        std::mem::swap(&mut a, &mut b);
    }
    let (leader, follower) = (a, b);
    let old_token = token(&leader.leader().expect("leader answers"));

    // Kill the leader's process (no clean stop): the follower takes over within the TTL.
    let killed_at = Instant::now();
    let mut leader = leader;
    leader.child.kill().expect("kill -9 the leader");
    leader.child.wait().expect("reap");
    let state =
        wait_for(Duration::from_secs(6), || follower.leader().filter(|s| s["is_leader"] == true))
            .expect("the follower becomes leader");
    let took = killed_at.elapsed();
    assert!(took < Duration::from_millis(2000 + 1500), "takeover took {took:?}");
    let new_token = token(&state);
    assert!(new_token > old_token, "fencing token {new_token} must exceed {old_token}");

    // Freeze the new leader past its lease: a fresh instance takes over; once the frozen one
    // runs again it sees its lease is gone and steps down.
    let frozen = follower;
    let fresh = Instance::start(dir.path(), "inst-c", &redis, &prefix);
    wait_for(Duration::from_secs(10), || fresh.leader()).expect("the fresh instance answers");
    frozen.signal("-STOP");
    let state =
        wait_for(Duration::from_secs(8), || fresh.leader().filter(|s| s["is_leader"] == true))
            .expect("the fresh instance takes over from the frozen leader");
    assert!(token(&state) > new_token);
    frozen.signal("-CONT");
    let stepped_down = wait_for(Duration::from_secs(5), || {
        frozen.leader().filter(|s| s["is_leader"] == false && s["leader"] == "inst-c")
    })
    .expect("the old leader steps down and follows the new one once it runs again");
    assert!(stepped_down["fencing_token"].is_null(), "a follower holds no token");
    drop(leader);
}
