//! The gateway's edge under slow and hostile clients, with the real `miroir serve` over a
//! development node and raw sockets: slow senders do not hold request slots, probes stay open,
//! idle connections are closed, a full gateway sheds load with a Meilisearch-shaped 503, and
//! SIGTERM lets a request in flight finish.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gateway::{nodes_section, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::Value;

mod gateway;

const KEY: &str = "edge-master-key";
const NODE_KEY: &str = "edge-node-key";

fn start(server: &str, node: &TestNode) -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config =
        format!("metrics: {{ enabled: false }}\nshards: 4\n{}", nodes_section([node.url()]));
    let gateway = Gateway::start_with_server(dir.path(), server, &config, KEY, NODE_KEY);
    (dir, gateway)
}

fn client(timeout: Duration) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(timeout).build().expect("client")
}

/// Opens a connection and sends a request head declaring `length` body bytes, then `partial`.
fn partial_request(port: u16, method_path: &str, length: usize, partial: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "{method_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(partial).expect("send part of the body");
    stream
}

/// Reads what the server sends until it closes the connection or `limit` passes.
fn read_answer(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buffer[..n]);
                if let Some(text) = complete_response(&answer) {
                    return text;
                }
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The response in `bytes` once its body (by `Content-Length`) is complete.
fn complete_response(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| text.into_owned())
}

fn documents_body(count: usize) -> Vec<u8> {
    let documents: Vec<Value> = (0..count)
        .map(|i| serde_json::json!({ "id": i, "title": format!("a document long enough to fill bytes {i}") }))
        .collect();
    serde_json::to_vec(&documents).expect("json")
}

#[test]
fn slow_senders_do_not_hold_slots_and_probes_stay_open() {
    let node = TestNode::start(Some(NODE_KEY));
    let (_dir, miroir) = start(
        "max_concurrent_requests: 4, queue_timeout: 300ms, request_timeout: 2s, idle_timeout: 3s",
        &node,
    );
    // 100 searches whose bodies never finish: far more than the 4 slots.
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| partial_request(miroir.port, "POST /indexes/movies/search", 40, b"{\"q\":"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let http = client(Duration::from_secs(5));
    let health = http.get(format!("{}/health", miroir.base)).send().expect("/health answers");
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{}/_miroir/ready", miroir.base)).send().expect("ready answers");
    assert!([200, 503].contains(&ready.status().as_u16()), "{}", ready.status());
    // A whole request still gets a slot: the slow senders hold none.
    let listed = http
        .get(format!("{}/indexes", miroir.base))
        .bearer_auth(KEY)
        .send()
        .expect("a complete request answers");
    assert_eq!(listed.status(), 200);

    // Past `request_timeout`, every slow sender gets 408 miroir_request_timeout.
    let answer = read_answer(&mut slow[0], Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"miroir_request_timeout\""), "{answer}");
    assert!(answer.contains("\"type\":\"invalid_request\""), "{answer}");

    // A connection that sends nothing is closed after `idle_timeout`.
    let mut idle = TcpStream::connect(("127.0.0.1", miroir.port)).expect("connect");
    let opened = Instant::now();
    let answer = read_answer(&mut idle, Duration::from_secs(15));
    assert!(
        opened.elapsed() < Duration::from_secs(12),
        "an idle connection stayed open {:?}: {answer}",
        opened.elapsed()
    );
    slow.clear();
}

#[test]
fn a_full_gateway_sheds_load_with_a_meilisearch_error() {
    let node = TestNode::start(Some(NODE_KEY));
    let (_dir, miroir) =
        start("max_concurrent_requests: 1, queue_timeout: 300ms, request_timeout: 20s", &node);
    // A large body (read only once it holds the one slot) that stalls halfway.
    let body = documents_body(3000);
    assert!(body.len() > 64 * 1024);
    let holder = partial_request(
        miroir.port,
        "POST /indexes/books/documents",
        body.len(),
        &body[..body.len() / 2],
    );
    std::thread::sleep(Duration::from_millis(300));

    let http = client(Duration::from_secs(10));
    let refused = http
        .get(format!("{}/indexes", miroir.base))
        .bearer_auth(KEY)
        .send()
        .expect("an answer while full");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().expect("json error");
    assert_eq!(error["code"], "miroir_overloaded", "{error}");
    assert_eq!(error["type"], "system");
    assert_eq!(error["link"], "https://docs.meilisearch.com/errors#miroir_overloaded");
    assert_eq!(http.get(format!("{}/health", miroir.base)).send().expect("health").status(), 200);

    // The stalled client goes away: its slot comes back.
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = http
            .get(format!("{}/indexes", miroir.base))
            .bearer_auth(KEY)
            .send()
            .expect("answer")
            .status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let node = TestNode::start(Some(NODE_KEY));
    let (_dir, mut miroir) = start("", &node);
    let body = documents_body(2000);
    let mut writer = partial_request(
        miroir.port,
        "POST /indexes/books/documents",
        body.len(),
        &body[..body.len() / 2],
    );
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &miroir.pid().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(500));
    // Stopping: no new connection is taken, and the one in flight finishes.
    assert!(TcpStream::connect(("127.0.0.1", miroir.port)).is_err(), "still accepting");
    writer.write_all(&body[body.len() / 2..]).expect("send the rest of the body");
    let answer = read_answer(&mut writer, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.contains("\"taskUid\""), "{answer}");
    let exit = miroir.wait_exit(Duration::from_secs(20)).expect("miroir stops after the request");
    assert!(exit.success(), "{exit}");
}
