//! Runs the built `miroir` binary: `check-config` verdicts and exit codes, and `serve` answering
//! `/health` and stopping on SIGTERM.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_miroir");

const NODES: &str = r#"
nodes:
  - { id: meili-a0, address: "http://127.0.0.1:7701", replica_group: a }
  - { id: meili-a1, address: "http://127.0.0.1:7702", replica_group: a }
  - { id: meili-b0, address: "http://127.0.0.1:7711", replica_group: b }
"#;

/// A `miroir` command with no `MIROIR_*` variables inherited, so the test sees only its own.
fn miroir() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MIROIR_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

fn write_config(dir: &Path, contents: &str) -> PathBuf {
    let path = dir.join("miroir.yaml");
    std::fs::write(&path, contents).expect("write config");
    path
}

fn check_config(path: &Path) -> Output {
    miroir().arg("check-config").arg(path).output().expect("run miroir check-config")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = check_config(&write_config(dir.path(), NODES));
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", text(&output.stderr));
    assert!(stdout.starts_with("config OK"), "{stdout}");
    assert!(
        stdout.contains("3 nodes in 2 replica groups, 64 shards, RF 1, task store sqlite"),
        "{stdout}"
    );
}

#[test]
fn check_config_accepts_the_documented_example() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/config/miroir.yaml");
    let output = check_config(&example);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("config OK: 4 nodes in 2 replica groups"));
}

#[test]
fn check_config_names_an_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &format!("{NODES}server:\n  prot: 8080\n"));
    let output = check_config(&path);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.prot: unknown key `prot`"), "{stderr}");
    assert!(stderr.contains("did you mean `port`?"), "{stderr}");
    assert!(text(&output.stdout).is_empty());
}

#[test]
fn check_config_names_replication_factor_larger_than_a_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &format!("{NODES}replication_factor: 2\n"));
    let output = check_config(&path);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("replication_factor: 2 is larger than replica group `b`"), "{stderr}");
}

#[test]
fn check_config_lists_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        &format!("{NODES}replicas: 2\nserver: {{ port: 0 }}\nmaster_key: x\n"),
    );
    let output = check_config(&path);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in ["master_key:", "server.port:", "task_store.backend:", "MIROIR_MASTER_KEY"] {
        assert!(stderr.contains(expected), "missing {expected}: {stderr}");
    }
}

#[test]
fn check_config_applies_environment_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), NODES);
    let output = miroir()
        .arg("check-config")
        .arg(&path)
        .env("MIROIR_REPLICATION_FACTOR", "3")
        .output()
        .expect("run miroir");
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("replication_factor: 3"), "{}", text(&output.stderr));
}

#[test]
fn check_config_refuses_a_missing_file() {
    let output = check_config(Path::new("/nonexistent/miroir.yaml"));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no such file"), "{}", text(&output.stderr));
}

#[test]
fn serve_refuses_to_start_on_a_bad_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "server: { prot: 1 }\n");
    let output =
        miroir().arg("serve").arg("--config").arg(&path).output().expect("run miroir serve");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.prot"), "{stderr}");
}

/// Kills the child if the test fails before it is stopped properly.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn wait_for_health(client: &reqwest::blocking::Client, url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = client.get(url).send() {
            assert_eq!(response.status(), 200);
            return;
        }
        if let Some(status) = child.try_wait().expect("poll child") {
            panic!("miroir exited early with {status}");
        }
        assert!(Instant::now() < deadline, "miroir did not answer {url} within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let metrics_port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "{NODES}server: {{ bind: 127.0.0.1, port: {port} }}\nmetrics: {{ port: {metrics_port} }}\ntask_store: {{ path: miroir.db }}\n"
        ),
    );
    let child = miroir()
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start miroir serve");
    let mut running = Running(Some(child));
    let child = running.0.as_mut().expect("child is running");

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let base = format!("http://127.0.0.1:{port}");
    wait_for_health(&client, &format!("{base}/health"), child);

    let health: serde_json::Value =
        client.get(format!("{base}/health")).send().expect("GET /health").json().expect("json");
    assert_eq!(health, serde_json::json!({ "status": "available" }));

    // The metrics request itself is in flight while the gauge is read.
    let metrics = client
        .get(format!("{base}/_miroir/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(metrics.contains("miroir_requests_in_flight 1"), "{metrics}");

    let response = client.get(format!("{base}/nope")).send().expect("GET /nope");
    assert_eq!(response.status(), 404);
    let error: serde_json::Value = response.json().expect("json error");
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["type"], "invalid_request");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("poll child") {
            break exit;
        }
        assert!(Instant::now() < deadline, "miroir did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
    running.0 = None;
    assert!(exit.success(), "exit {exit}: {stderr}");
    assert!(
        stderr.contains("running without a master key: every route is open (development mode)"),
        "{stderr}"
    );
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
}
