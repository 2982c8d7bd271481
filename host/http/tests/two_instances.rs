//! Two Miroir instances on one task store, in front of the same nodes, taking writes for the
//! same index at the same moment: every node must apply them in the same order, so replicas
//! hold the same documents and every node the same settings afterwards.

mod common;

use std::time::Duration;

use common::{serve, ClusterBuilder};
use serde_json::{json, Value};

/// Sends `body` to `url` and returns the Miroir task uid.
async fn write(http: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> u64 {
    let answer: Value = http
        .request(method, url)
        .json(&body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("miroir answers")
        .json()
        .await
        .expect("json");
    answer["taskUid"].as_u64().unwrap_or_else(|| panic!("no task: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_through_two_instances_reach_every_node_in_one_order() {
    let cluster = ClusterBuilder::new(1, 3, 3).shards(4).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    // A second instance: same configuration, same store file, its own listener.
    let (second, _state, _server) = serve(&cluster.config, &cluster.store_dir).await;
    let urls = [cluster.url.clone(), format!("http://{second}")];

    let http = reqwest::Client::new();
    let mut writes = Vec::new();
    for round in 0..40usize {
        let base = urls[round % 2].clone();
        let http = http.clone();
        writes.push(tokio::spawn(async move {
            let settings = write(
                &http,
                reqwest::Method::PATCH,
                format!("{base}/indexes/books/settings"),
                json!({"stopWords": [format!("w{round}")]}),
            )
            .await;
            let documents = write(
                &http,
                reqwest::Method::POST,
                format!("{base}/indexes/books/documents"),
                json!([{"id": 1, "round": round}, {"id": 2, "round": round}]),
            )
            .await;
            (settings, documents)
        }));
    }
    let mut tasks = Vec::new();
    for write in writes {
        let (a, b) = write.await.expect("writer");
        tasks.extend([a, b]);
    }
    for uid in tasks {
        let task = cluster.wait_task(uid).await;
        assert_eq!(task["status"], "succeeded", "{task}");
    }

    let mut settings = Vec::new();
    let mut documents = Vec::new();
    for i in 0..3 {
        settings.push(cluster.node_get(i, "/indexes/books/settings").await.1["stopWords"].clone());
        let one = cluster.node_get(i, "/indexes/books/documents/1").await.1["round"].clone();
        let two = cluster.node_get(i, "/indexes/books/documents/2").await.1["round"].clone();
        documents.push((one, two));
    }
    assert!(settings.windows(2).all(|w| w[0] == w[1]), "nodes disagree on settings: {settings:?}");
    // Each node's settings tasks, oldest first: the same sequence everywhere.
    let mut orders = Vec::new();
    for i in 0..3 {
        let (_, tasks) =
            cluster.node_get(i, "/tasks?types=settingsUpdate&limit=1000&indexUids=books").await;
        let mut order: Vec<Value> = tasks["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|t| t["details"]["stopWords"].clone())
            .filter(|w| !w.is_null())
            .collect();
        order.reverse();
        assert_eq!(order.len(), 40, "node {i}: {order:?}");
        orders.push(order);
    }
    assert!(orders.windows(2).all(|w| w[0] == w[1]), "nodes applied settings in different orders");
    assert!(documents.windows(2).all(|w| w[0] == w[1]), "replicas disagree: {documents:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_lease_left_by_a_dead_instance_only_delays_writes_until_it_expires() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "books", "primaryKey": "id"})).await;
    // An instance that died while sending a write: its lease stays until it expires.
    let ghost = cluster
        .state
        .store()
        .acquire_lease("index-write/books", "dead-instance#0", Duration::from_millis(800))
        .await
        .expect("the store answers");
    assert!(matches!(ghost, miroir_store::LeaseOutcome::Acquired(_)));
    let started = std::time::Instant::now();
    let answer = cluster
        .send_json("POST", "/indexes/books/documents", &json!([{"id": 1, "title": "Dune"}]))
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert!(started.elapsed() >= Duration::from_millis(500), "the write waited for the lease");
    let task = cluster.wait_task(answer.body["taskUid"].as_u64().expect("uid")).await;
    assert_eq!(task["status"], "succeeded", "{task}");
}

/// Waits (at most 5 s) until `count` writes of the instance wait for index `books`.
async fn until_waiting(state: &miroir_http::AppState, count: usize) {
    for _ in 0..500 {
        if state.index_writes_waiting("books") == count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{count} writes should wait, {} do", state.index_writes_waiting("books"));
}

/// Writes of one instance waiting for an index pass its lease from one to the next without the
/// store; the last one releases it, and another instance then writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_hands_its_write_lease_to_its_next_write_and_releases_it_after_the_last() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    let (_second, other, _server) = serve(&cluster.config, &cluster.store_dir).await;
    let lease = |state: &miroir_http::AppState| {
        let state = state.clone();
        async move { state.store().current_lease("index-write/books").await.expect("the store answers") }
    };
    let first = cluster.state.index_write_guard("books").await.expect("guard");
    let held = lease(&cluster.state).await.expect("the first write holds the lease");
    let state = cluster.state.clone();
    let next = tokio::spawn(async move { state.index_write_guard("books").await.map(|_g| ()) });
    // Queued first: the lock is fair, so the lease goes to this write, then to the next.
    until_waiting(&cluster.state, 1).await;
    let state = cluster.state.clone();
    let (took, take) = tokio::sync::oneshot::channel();
    let (looked, look) = tokio::sync::oneshot::channel::<()>();
    let waiting = tokio::spawn(async move {
        let guard = state.index_write_guard("books").await.expect("guard");
        let _ = took.send(());
        // Held until the test has looked at the store.
        let _ = look.await;
        drop(guard);
    });
    until_waiting(&cluster.state, 2).await;
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .expect("the second write got the index within 10 s")
        .expect("task")
        .expect("the second write got the index");
    tokio::time::timeout(Duration::from_secs(10), take)
        .await
        .expect("the third write got the index within 10 s")
        .expect("the third write got the index");
    let passed = lease(&cluster.state).await.expect("still held by this instance");
    assert_eq!(
        (passed.holder.as_str(), passed.token),
        (held.holder.as_str(), held.token),
        "handed on, not taken again"
    );
    let _ = looked.send(());
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the third write ended within 10 s")
        .expect("task");
    // The last write released it: the other instance takes the index without waiting for
    // the lease to expire (30 s).
    let started = std::time::Instant::now();
    let guard = tokio::time::timeout(Duration::from_secs(10), other.index_write_guard("books"))
        .await
        .expect("the other instance got the index in time")
        .expect("guard");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let theirs = lease(&other).await.expect("held by the other instance");
    assert_ne!(theirs.holder, held.holder);
    drop(guard);
}

/// A write that stops waiting (its client went away) is not counted as waiting: the last write
/// still releases the lease instead of keeping it for nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_gave_up_waiting_does_not_keep_the_lease_held() {
    let cluster = ClusterBuilder::new(1, 2, 1).start().await;
    let first = cluster.state.index_write_guard("books").await.expect("guard");
    let state = cluster.state.clone();
    let gave_up = tokio::spawn(async move { state.index_write_guard("books").await.map(drop) });
    until_waiting(&cluster.state, 1).await;
    gave_up.abort();
    assert!(gave_up.await.is_err(), "the waiting write was cancelled");
    assert_eq!(cluster.state.index_writes_waiting("books"), 0, "no longer counted");
    drop(first);
    let store = cluster.state.store();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.current_lease("index-write/books").await.expect("store").is_some() {
        assert!(std::time::Instant::now() < deadline, "the lease was never released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
