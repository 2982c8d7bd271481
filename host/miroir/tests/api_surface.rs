//! The Meilisearch API surface through the real `miroir serve` over three development nodes:
//! the default search key listed by `GET /keys` searches, and a webhook receives a finished
//! Miroir task without any client asking about the task.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use gateway::{json_of, nodes_section, send, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;

const KEY: &str = "surface-master-key";
const NODE_KEY: &str = "surface-node-key";

/// A one-thread HTTP listener that hands each request body to the test.
fn hook_listener() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (url, rx)
}

#[test]
fn default_keys_and_webhooks_work_through_miroir_serve() {
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 6\n{}",
        nodes_section(nodes.iter().map(TestNode::url))
    );
    let gateway = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let http = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", gateway.base);

    let (hook_url, deliveries) = hook_listener();
    let (status, _) = send(&http, "POST", &url("/webhooks"), KEY, Some(json!({"url": hook_url})));
    assert_eq!(status, 201);

    let task = json_of(send(
        &http,
        "POST",
        &url("/indexes"),
        KEY,
        Some(json!({"uid": "s", "primaryKey": "id"})),
    ));
    let delivered = deliveries.recv_timeout(Duration::from_secs(30)).expect("a webhook delivery");
    let delivered: Value = serde_json::from_str(delivered.trim()).expect("one JSON line");
    assert_eq!(delivered["uid"], task["taskUid"]);
    assert_eq!(delivered["status"], "succeeded");

    let docs: Vec<Value> =
        (0..20).map(|i| json!({"id": i, "title": format!("shoe {i}")})).collect();
    let added = json_of(send(&http, "POST", &url("/indexes/s/documents"), KEY, Some(json!(docs))));
    loop {
        let body = deliveries.recv_timeout(Duration::from_secs(30)).expect("a webhook delivery");
        let task: Value = serde_json::from_str(body.trim()).expect("one JSON line");
        if task["uid"] == added["taskUid"] {
            assert_eq!(task["status"], "succeeded", "{task}");
            break;
        }
    }

    let keys = json_of(send(&http, "GET", &url("/keys"), KEY, None));
    let search_key = keys["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|k| k["name"] == "Default Search API Key")
        .and_then(|k| k["key"].as_str())
        .expect("a default search key")
        .to_owned();
    let found = json_of(send(
        &http,
        "POST",
        &url("/indexes/s/search"),
        &search_key,
        Some(json!({"q": "shoe"})),
    ));
    assert_eq!(found["estimatedTotalHits"], 20, "{found}");
}
