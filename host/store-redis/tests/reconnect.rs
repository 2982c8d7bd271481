//! Behaviour against a Redis this test owns: it restarts the server under a live store, and
//! checks that every key stays under the configured prefix.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::RedisServer;
use miroir_store::prelude::*;
use miroir_store::{
    IdempotencyRecord, LeaseOutcome, NewTask, SessionRecord, StoreError, TaskStatus,
};
use miroir_store_redis::{RedisConfig, RedisStore};
use time::OffsetDateTime;

fn task() -> NewTask {
    NewTask {
        index_uid: Some("movies".into()),
        kind: "documentAdditionOrUpdate".into(),
        status: TaskStatus::Enqueued,
        enqueued_at: OffsetDateTime::now_utc(),
        details: None,
        node_tasks: BTreeMap::from([("n1".into(), 1)]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_survives_a_redis_restart_without_being_recreated() {
    let Some(mut server) = RedisServer::start() else { return };
    let port = server.port;
    let mut config = RedisConfig::new(server.url()).with_prefix(common::unique_prefix());
    config.op_timeout = Duration::from_secs(1);
    let store = RedisStore::connect(config).await.expect("connect");
    let before = store.create_task(task()).await.expect("create before restart");
    assert!(store.get_task(before.uid).await.expect("get").is_some());

    server.kill();
    let started = Instant::now();
    let down = store.get_task(before.uid).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "with redis down: {down:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    let down = store.create_task(task()).await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "with redis down: {down:?}");

    let _server = RedisServer::start_on(port).expect("restart on the same port");
    let deadline = Instant::now() + Duration::from_secs(15);
    let lost = loop {
        match store.create_task(task()).await {
            Ok(t) => panic!("a task got uid {} from a sequence that was lost", t.uid),
            Err(StoreError::Unavailable(e)) if Instant::now() < deadline => {
                eprintln!("waiting for reconnection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => break e,
        }
    };
    // The restarted server kept nothing: the store says its sequence is gone rather than count
    // from 1 again, until the caller restores it.
    assert!(matches!(lost, StoreError::NotFound(_)), "{lost:?}");
    assert_eq!(store.task_sequence().await.expect("sequence"), None);
    assert_eq!(store.raise_task_sequence(before.uid + 100).await.expect("raise"), before.uid + 100);
    let after = store.create_task(task()).await.expect("create after the sequence is restored");
    assert_eq!(after.uid, before.uid + 101);
    // The restarted server kept nothing (no persistence), and the same handle works on it.
    assert_eq!(store.get_task(after.uid).await.expect("get"), Some(after.clone()));
    let rec = IdempotencyRecord { body_hash: "h".into(), task_uid: after.uid };
    let put = store.put_idempotency_if_absent("k", &rec, Duration::from_secs(60)).await;
    assert_eq!(put.expect("idempotency after restart"), None);
    let lease = store.acquire_lease("leader", "a", Duration::from_secs(5)).await.expect("lease");
    assert!(matches!(lease, LeaseOutcome::Acquired(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_is_under_the_prefix() {
    let Some(server) = RedisServer::start() else { return };
    let prefix = "{tenant-a}:";
    let store = RedisStore::connect(RedisConfig::new(server.url()).with_prefix(prefix))
        .await
        .expect("connect");
    let t = store.create_task(task()).await.expect("task");
    let mut done = t.clone();
    done.status = TaskStatus::Succeeded;
    done.finished_at = Some(OffsetDateTime::now_utc());
    store.update_task(&done).await.expect("update");
    let rec = IdempotencyRecord { body_hash: "h".into(), task_uid: t.uid };
    store.put_idempotency_if_absent("k", &rec, Duration::from_secs(60)).await.expect("idem");
    let session = SessionRecord { last_write_task: t.uid, group: "g".into() };
    store.put_session("s", &session, Duration::from_secs(60)).await.expect("session");
    store.enqueue_job("j", &serde_json::json!({})).await.expect("job");
    store.claim_job("w", Duration::from_secs(60)).await.expect("claim");
    store.enqueue_job("j", &serde_json::json!({})).await.expect("job");
    store.save_rebalance("r", 0, &serde_json::json!({}), None).await.expect("rebalance");
    store.acquire_lease("leader", "a", Duration::from_secs(60)).await.expect("lease");
    store.plugin_put("p", "k", b"v").await.expect("kv");
    store.advance_cdc_cursor("movies", 3).await.expect("cdc");

    let client = redis::Client::open(server.url()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("raw connection");
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut conn).await.expect("KEYS");
    assert!(keys.len() >= 12, "{keys:?}");
    for key in &keys {
        assert!(key.starts_with(prefix), "key `{key}` outside the prefix");
    }
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}idem:k"))
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    assert!(ttl > 50_000 && ttl <= 60_000, "idempotency TTL is native: {ttl}");
}

/// `FLUSHALL` under a live store (what a fresh Redis looks like): the index list is empty, not
/// an error; no uid is handed out from a lost sequence; fencing tokens keep growing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_reuses_no_uid_and_no_fencing_token() {
    let Some(server) = RedisServer::start() else { return };
    let store = RedisStore::connect(RedisConfig::new(server.url()).with_prefix("miroir:"))
        .await
        .expect("connect");
    let first = store.create_task(task()).await.expect("task");
    let LeaseOutcome::Acquired(old) =
        store.acquire_lease("leader", "a", Duration::from_secs(60)).await.expect("lease")
    else {
        panic!("a free lease is acquired")
    };
    let meta = miroir_store::IndexMeta::new("movies", 8, None, OffsetDateTime::now_utc());
    store.create_index(&meta).await.expect("index");

    let client = redis::Client::open(server.url()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("raw connection");
    let () = redis::cmd("FLUSHALL").query_async(&mut conn).await.expect("FLUSHALL");

    assert!(store.list_indexes().await.expect("list an emptied store").is_empty());
    assert_eq!(store.get_index("movies").await.expect("get"), None);
    assert_eq!(store.task_sequence().await.expect("sequence"), None);
    let lost = store.create_task(task()).await;
    assert!(matches!(lost, Err(StoreError::NotFound(_))), "{lost:?}");
    assert_eq!(store.get_task(1).await.expect("get"), None, "nothing recorded");
    store.raise_task_sequence(first.uid + 10_000).await.expect("raise");
    assert_eq!(store.create_task(task()).await.expect("task").uid, first.uid + 10_001);
    let LeaseOutcome::Acquired(new) =
        store.acquire_lease("leader", "b", Duration::from_secs(60)).await.expect("lease")
    else {
        panic!("the lease was lost with the data")
    };
    assert!(new.token > old.token, "token {} after {}", new.token, old.token);
}
