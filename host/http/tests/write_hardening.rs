//! The write path against hostile or unlucky input, with real development nodes: malformed
//! idempotency keys, foreign authorization schemes, trailing bytes, over-long index uids.

mod common;

use std::time::Duration;

use common::ClusterBuilder;
use miroir_devnode::testing::TestNode;
use reqwest::header::HeaderValue;
use serde_json::{json, Value};

async fn node_document_count(cluster: &common::Cluster, index: &str) -> u64 {
    let mut total = 0;
    for node in 0..cluster.nodes.len() {
        let (_, page) =
            cluster.node_get(node, &format!("/indexes/{index}/documents?limit=1")).await;
        total += page["total"].as_u64().unwrap_or(0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_idempotency_keys_are_refused_and_write_nothing() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    let long = "k".repeat(257);
    let keys: [&[u8]; 4] = [b"cl\xc3\xa9", b"", b"   ", long.as_bytes()];
    for key in keys {
        let response = cluster
            .http
            .post(format!("{}/indexes/books/documents", cluster.url))
            .header("content-type", "application/json")
            .header("idempotency-key", HeaderValue::from_bytes(key).expect("header bytes"))
            .body(r#"[{"id": 1, "title": "one"}]"#)
            .send()
            .await
            .expect("miroir answers");
        assert_eq!(response.status().as_u16(), 400, "key {key:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], "miroir_invalid_idempotency_key", "{body}");
        assert_eq!(body["type"], "invalid_request", "{body}");
        assert_eq!(
            body["link"],
            "https://docs.meilisearch.com/errors#miroir_invalid_idempotency_key"
        );
    }
    // A key of the longest length is a key.
    let longest = "k".repeat(256);
    let answer = cluster
        .call(
            "POST",
            "/indexes/books/documents",
            Some(("application/json", br#"[{"id": 2}]"#.to_vec())),
            &[("Idempotency-Key", &longest)],
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(node_document_count(&cluster, "books").await, 1, "only the valid write landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_bearer_authorization_is_a_missing_header_as_on_meilisearch() {
    let cluster = ClusterBuilder::new(1, 1, 1).master_key("the-master").start().await;
    let response = cluster
        .http
        .get(format!("{}/indexes", cluster.url))
        .header("authorization", "Basic dGhlOm1hc3Rlcg==")
        .send()
        .await
        .expect("miroir answers");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "message": "The Authorization header is missing. It must use the bearer authorization method.",
            "code": "missing_authorization_header",
            "type": "auth",
            "link": "https://docs.meilisearch.com/errors#missing_authorization_header",
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bytes_after_a_json_array_are_ignored_as_meilisearch_does() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "api", "primaryKey": "id"})).await;
    let answer = cluster
        .call(
            "POST",
            "/indexes/api/documents",
            Some(("application/json", br#"[{"id": 6, "title": "zeta"}] trailing"#.to_vec())),
            &[],
        )
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["details"]["receivedDocuments"], 1, "{task}");
    let document = cluster.get("/indexes/api/documents/6").await;
    assert_eq!(document.body, json!({"id": 6, "title": "zeta"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_uids_longer_than_400_bytes_are_refused_and_leave_no_index() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    let long = "h".repeat(401);
    let message = format!(
        "`{long}` is not a valid index uid. Index uid can be an integer or a string containing \
         only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than \
         512 bytes."
    );
    let write =
        cluster.send_json("POST", &format!("/indexes/{long}/documents"), &json!([{"id": 1}])).await;
    assert_eq!(write.status, 400, "{:?}", write.body);
    assert_eq!(write.body["code"], "invalid_index_uid");
    assert_eq!(write.body["message"], message.as_str());
    let create = cluster.send_json("POST", "/indexes", &json!({"uid": long})).await;
    assert_eq!(create.status, 400, "{:?}", create.body);
    assert_eq!(create.body["message"], format!("Invalid value at `.uid`: {message}"));
    let delete = cluster.call("DELETE", &format!("/indexes/{long}"), None, &[]).await;
    assert_eq!((delete.status, delete.body["code"].as_str()), (400, Some("invalid_index_uid")));
    let listed = cluster.get("/indexes").await;
    assert_eq!(listed.body["total"], 0, "{:?}", listed.body);

    // 400 bytes is a uid.
    let longest = "h".repeat(400);
    let task = cluster
        .send_and_wait("POST", &format!("/indexes/{longest}/documents"), &json!([{"id": 1}]))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(cluster.get("/indexes").await.body["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_write_the_nodes_refuse_leaves_no_ghost_index() {
    let cluster = ClusterBuilder::new(1, 2, 1).master_key("the-master").start().await;
    let created = cluster
        .send_json("POST", "/keys", &json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let (key_uid, key) = (
        created.body["uid"].as_str().expect("uid").to_owned(),
        created.body["key"].as_str().expect("key").to_owned(),
    );
    // Miroir learns the key, then it disappears from the nodes behind Miroir's back: Miroir
    // accepts the write and every node refuses it.
    let ok = cluster.http.get(format!("{}/indexes", cluster.url)).bearer_auth(&key).send().await;
    assert_eq!(ok.expect("answer").status().as_u16(), 200);
    for node in cluster.nodes.iter().flatten() {
        let gone = cluster
            .http
            .delete(format!("{}/keys/{key_uid}", node.url()))
            .bearer_auth(common::NODE_KEY)
            .send()
            .await
            .expect("node answers");
        assert_eq!(gone.status().as_u16(), 204);
    }
    let refused = cluster
        .http
        .post(format!("{}/indexes/ghost/documents", cluster.url))
        .bearer_auth(&key)
        .json(&json!([{"id": 1}]))
        .send()
        .await
        .expect("miroir answers");
    assert_eq!(refused.status().as_u16(), 403);

    let listed = cluster.get("/indexes").await;
    assert_eq!(listed.body["total"], 0, "a ghost index is listed: {:?}", listed.body);
    assert_eq!(cluster.get("/indexes/ghost").await.status, 404);
    for node in 0..cluster.nodes.len() {
        assert_eq!(cluster.node_get(node, "/indexes/ghost").await.0, 404, "node {node}");
    }
    // The uid is free again.
    let task = cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "ghost", "primaryKey": "id"}))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
}

/// The latest task uid node `index` knows.
async fn latest_node_task(cluster: &common::Cluster, index: usize) -> u64 {
    let (_, page) = cluster.node_get(index, "/tasks?limit=1").await;
    page["results"][0]["uid"].as_u64().unwrap_or_else(|| panic!("no task: {page}"))
}

fn batch(from: usize, count: usize) -> Value {
    Value::Array((from..from + count).map(|i| json!({"id": i, "title": format!("t{i}")})).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_of_a_node_restarted_empty_fail_as_lost_instead_of_reading_other_tasks() {
    let mut cluster =
        ClusterBuilder::new(1, 2, 1).task_delay(Duration::from_millis(1500)).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    let before = latest_node_task(&cluster, 0).await;
    let first = cluster.send_json("POST", "/indexes/books/documents", &batch(0, 40)).await;
    let second = cluster.send_json("POST", "/indexes/books/documents", &batch(40, 40)).await;
    let (first, second) = (
        first.body["taskUid"].as_u64().expect("first task"),
        second.body["taskUid"].as_u64().expect("second task"),
    );
    assert_eq!(latest_node_task(&cluster, 0).await, before + 2, "both batches reached node 0");
    // Node 0 loses its disk before running them, and comes back empty on its port.
    let addr = cluster.nodes[0].as_ref().expect("node 0").addr();
    cluster.stop_node(0);
    cluster.nodes[0] = Some(TestNode::start_at(addr, Some(common::NODE_KEY), Duration::ZERO));
    // New writes make node 0 number tasks again, up to the uid `first` was mapped to there (or
    // past it: Miroir also gives the emptied node the index's settings again).
    let mut later = Vec::new();
    for round in 0..=before + 1 {
        let from = 1000 + 40 * round as usize;
        let answer = cluster.send_json("POST", "/indexes/books/documents", &batch(from, 40)).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        later.push(answer.body["taskUid"].as_u64().expect("task"));
        if latest_node_task(&cluster, 0).await > before {
            break;
        }
    }
    assert!(latest_node_task(&cluster, 0).await > before, "node 0 reused the uid of `first`");
    for uid in later {
        let task = cluster.wait_task(uid).await;
        assert_eq!(task["status"], "succeeded", "a task after the reset is not lost: {task}");
    }
    // `first` now maps to an unrelated task on node 0, `second` to none: both are lost there.
    for uid in [first, second] {
        let task = cluster.wait_task(uid).await;
        assert_eq!(task["status"], "failed", "{task}");
        assert_eq!(task["error"]["code"], "miroir_task_lost", "{task}");
        assert_eq!(task["error"]["type"], "system", "{task}");
        assert!(task["error"]["message"].as_str().expect("message").contains("`g0-n0`"), "{task}");
        assert_eq!(task["details"]["indexedDocuments"], 0, "{task}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_lost_by_one_replica_that_the_other_applied_succeeds() {
    let mut cluster =
        ClusterBuilder::new(1, 2, 2).task_delay(Duration::from_millis(1500)).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    let before = latest_node_task(&cluster, 0).await;
    let answer = cluster.send_json("POST", "/indexes/books/documents", &batch(0, 40)).await;
    let uid = answer.body["taskUid"].as_u64().expect("task");
    assert_eq!(latest_node_task(&cluster, 0).await, before + 1, "the batch reached node 0");
    // Node 0 (an owner of every shard, as node 1 is) loses its disk before running it.
    let addr = cluster.nodes[0].as_ref().expect("node 0").addr();
    cluster.stop_node(0);
    cluster.nodes[0] = Some(TestNode::start_at(addr, Some(common::NODE_KEY), Duration::ZERO));
    let task = cluster.wait_task(uid).await;
    assert_eq!(task["status"], "succeeded", "node 1 applied every document: {task}");
    assert_eq!(task["details"]["indexedDocuments"], 40, "{task}");
    let (_, documents) = cluster.node_get(1, "/indexes/books/documents?limit=100").await;
    assert_eq!(documents["total"], 40, "{documents}");
}

/// Waits (at most 30 s) until node `index` has no task left to run.
async fn node_idle(cluster: &common::Cluster, index: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = cluster.node_get(index, "/tasks?statuses=enqueued,processing").await;
        if page["results"].as_array().is_some_and(Vec::is_empty) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "node {index} stays busy: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ids of `from..from+count` that node `index` holds in `books`.
async fn held_ids(cluster: &common::Cluster, index: usize, from: usize, count: usize) -> Vec<u64> {
    let (_, page) = cluster.node_get(index, "/indexes/books/documents?limit=10000").await;
    let mut ids: Vec<u64> = page["results"]
        .as_array()
        .map(|docs| docs.iter().filter_map(|d| d["id"].as_u64()).collect())
        .unwrap_or_default();
    ids.retain(|id| (from as u64..(from + count) as u64).contains(id));
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_refused_for_lack_of_quorum_leaves_no_document_readable() {
    // No health probes: Miroir believes node 1 is up and sends it the write, which fails there
    // after node 0 took its part.
    let mut cluster = ClusterBuilder::new(1, 2, 1).shards(8).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    let kept = cluster.send_and_wait("POST", "/indexes/books/documents", &batch(0, 40)).await;
    assert_eq!(kept["status"], "succeeded", "{kept}");
    let on_node_0 = held_ids(&cluster, 0, 0, 40).await;
    assert!(!on_node_0.is_empty(), "the batch spans both nodes");
    cluster.stop_node(1);

    let refused = cluster.send_json("POST", "/indexes/books/documents", &batch(100, 40)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "miroir_no_quorum");
    node_idle(&cluster, 0).await;
    assert_eq!(held_ids(&cluster, 0, 100, 40).await, Vec::<u64>::new(), "refused documents stay");
    assert_eq!(held_ids(&cluster, 0, 0, 40).await, on_node_0, "earlier documents are kept");

    // A first write to a new index, refused: no index anywhere.
    let refused = cluster.send_json("POST", "/indexes/fresh/documents", &batch(0, 40)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    node_idle(&cluster, 0).await;
    assert_eq!(cluster.node_get(0, "/indexes/fresh").await.0, 404);
    assert_eq!(cluster.get("/indexes").await.body["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_cannot_reach_quorum_is_refused_before_anything_is_sent() {
    let mut cluster = ClusterBuilder::new(1, 2, 1).shards(8).health_probes().start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    let before = latest_node_task(&cluster, 0).await;
    cluster.stop_node_until_down(1).await;
    let refused = cluster.send_json("POST", "/indexes/books/documents", &batch(100, 40)).await;
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert_eq!(refused.body["code"], "miroir_no_quorum");
    assert_eq!(latest_node_task(&cluster, 0).await, before, "node 0 was sent nothing");
    assert_eq!(held_ids(&cluster, 0, 100, 40).await, Vec::<u64>::new());
}
