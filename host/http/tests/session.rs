//! Read-your-writes: with `X-Miroir-Session`, a search right after a write in the same session
//! sees that write, every time, even with two replica groups and nodes that take a while to
//! index.

mod common;

use std::time::Duration;

use common::ClusterBuilder;
use serde_json::json;

/// A word made of letters only, unique per `n`; neighbours may match as typos, which is why
/// the check looks for the written document among the hits.
fn word(mut n: usize) -> String {
    let mut out = String::from("zq");
    for _ in 0..4 {
        out.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_search_in_the_session_sees_the_write_every_time() {
    let cluster = ClusterBuilder::new(2, 1, 1)
        .master_key("session-key")
        .task_delay(Duration::from_millis(15))
        .start()
        .await;
    let created = cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "notes", "primaryKey": "id"}))
        .await;
    assert_eq!(created["status"], "succeeded", "{created}");
    let session = [("x-miroir-session", "reader-1")];
    for i in 0..200 {
        let doc = serde_json::to_vec(&json!([{"id": i, "text": word(i)}])).expect("json");
        let write = cluster
            .call("POST", "/indexes/notes/documents", Some(("application/json", doc)), &session)
            .await;
        assert_eq!(write.status, 202, "{:?}", write.body);
        let query = serde_json::to_vec(&json!({"q": word(i)})).expect("json");
        let read = cluster
            .call("POST", "/indexes/notes/search", Some(("application/json", query)), &session)
            .await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        let ids: Vec<&serde_json::Value> =
            read.body["hits"].as_array().expect("hits").iter().map(|h| &h["id"]).collect();
        assert!(ids.contains(&&json!(i)), "try {i}: the write is not visible: {}", read.body);
    }
    // Without the header nothing waits: with nodes slower than the client, reads miss writes.
    let mut missed = 0;
    for i in 200..240 {
        let doc = serde_json::to_vec(&json!([{"id": i, "text": word(i)}])).expect("json");
        cluster
            .call("POST", "/indexes/notes/documents", Some(("application/json", doc)), &[])
            .await;
        let query = serde_json::to_vec(&json!({"q": word(i)})).expect("json");
        let read = cluster
            .call("POST", "/indexes/notes/search", Some(("application/json", query)), &[])
            .await;
        let hits = read.body["hits"].as_array().cloned().unwrap_or_default();
        if !hits.iter().any(|h| h["id"] == json!(i)) {
            missed += 1;
        }
    }
    println!("without a session, {missed} of 40 reads missed the write just made");
}
