//! `miroir serve` killed in the middle of a write and started again on the same SQLite store:
//! the leases its dead predecessor left (the index-write lease, the leader lease) are released
//! at once, so the first write and the leadership do not wait for them to expire.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::{json_of, nodes_section, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::json;

mod gateway;

const KEY: &str = "restart-master-key";
const NODE_KEY: &str = "restart-node-key";

/// A TCP proxy to a node that can be told to stall: while `stall` is set, requests (on new or
/// pooled connections) are never answered, so a write through it hangs holding its lease.
struct StallProxy {
    addr: std::net::SocketAddr,
    stall: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl StallProxy {
    fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let stall = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (thread_stall, thread_held) = (Arc::clone(&stall), Arc::clone(&held));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if thread_stall.load(Ordering::SeqCst) {
                    thread_held.lock().expect("held").push(client);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(target) else { continue };
                let (client_read, upstream_write) = (
                    client.try_clone().expect("clone client"),
                    upstream.try_clone().expect("clone upstream"),
                );
                let stall = Arc::clone(&thread_stall);
                std::thread::spawn(move || pump(client_read, upstream_write, Some(stall)));
                std::thread::spawn(move || pump(upstream, client, None));
            }
        });
        StallProxy { addr, stall, held }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Copies `from` to `to`. With `stall`, requests read while it is set are swallowed, and so is
/// everything after them on that connection (pooled keep-alive connections stall too).
fn pump(mut from: TcpStream, mut to: TcpStream, stall: Option<Arc<AtomicBool>>) {
    let mut buffer = [0u8; 16 * 1024];
    let mut swallowing = false;
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                swallowing |= stall.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
                if !swallowing && to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn leads(client: &reqwest::blocking::Client, base: &str) -> bool {
    json_of(send(client, "GET", &format!("{base}/_miroir/leader"), KEY, None))["is_leader"] == true
}

#[test]
fn a_restarted_instance_releases_the_leases_its_killed_predecessor_left() {
    let node = TestNode::start(Some(NODE_KEY));
    let proxy = StallProxy::start(node.addr());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 2\n\
         leader: {{ lease_ttl: 30s, renew_interval: 10s }}\n{}",
        nodes_section([proxy.url()]),
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    let first = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    wait_for(Duration::from_secs(10), "the first instance to lead", || leads(&client, &first.base));
    let created = send(
        &client,
        "POST",
        &format!("{}/indexes", first.base),
        KEY,
        Some(json!({"uid": "books", "primaryKey": "id"})),
    );
    wait_task(&client, &first.base, KEY, created);

    // A write that hangs on the node, holding the index-write lease, when the process is killed.
    proxy.stall.store(true, Ordering::SeqCst);
    let url = format!("{}/indexes/books/documents", first.base);
    let hanging = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::new();
        let _ = client.post(url).bearer_auth(KEY).json(&json!([{"id": 1}])).send();
    });
    std::thread::sleep(Duration::from_millis(1000));
    drop(first); // SIGKILL
    let _ = hanging.join();
    proxy.stall.store(false, Ordering::SeqCst);
    proxy.held.lock().expect("held").clear();

    let second = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let started = Instant::now();
    let written = send(
        &client,
        "POST",
        &format!("{}/indexes/books/documents", second.base),
        KEY,
        Some(json!([{"id": 2, "title": "after the restart"}])),
    );
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "the first write waited {waited:?} for a dead lease");
    wait_task(&client, &second.base, KEY, written);
    wait_for(Duration::from_secs(5), "the restarted instance to lead", || {
        leads(&client, &second.base)
    });
}
