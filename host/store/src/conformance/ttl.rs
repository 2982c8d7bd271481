//! Cases for idempotency keys and sessions, including their expiry.

use std::sync::Arc;
use std::time::Duration;

use super::{eventually, StoreFactory};
use crate::prelude::*;
use crate::{IdempotencyRecord, SessionLimits, SessionRecord};

const SHORT: Duration = Duration::from_millis(200);
const LONG: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(3);

fn rec(hash: &str, task: u64) -> IdempotencyRecord {
    IdempotencyRecord { body_hash: hash.to_owned(), task_uid: task }
}

fn session(task: u64) -> SessionRecord {
    SessionRecord { last_write_task: task, group: "g1".to_owned() }
}

/// The first put stores; later puts return the stored record and change nothing.
pub async fn idempotency_put_if_absent<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    assert_eq!(store.get_idempotency("k").await.expect("get"), None);
    assert_eq!(store.put_idempotency_if_absent("k", &rec("h1", 1), LONG).await.expect("put"), None);
    let again = store.put_idempotency_if_absent("k", &rec("h2", 2), LONG).await.expect("put");
    assert_eq!(again, Some(rec("h1", 1)));
    assert_eq!(store.get_idempotency("k").await.expect("get"), Some(rec("h1", 1)));
    assert_eq!(
        store.put_idempotency_if_absent("k2", &rec("h2", 2), LONG).await.expect("put"),
        None
    );
    assert_eq!(store.idempotency_count().await.expect("count"), 2);
}

/// Of many concurrent puts of one key, exactly one stores.
pub async fn idempotency_concurrent_single_winner<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(SessionLimits::default()).await;
    let mut handles = Vec::new();
    for i in 0..16u64 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(tokio::spawn(async move {
            store.put_idempotency_if_absent("same", &rec("h", i), LONG).await.expect("put")
        }));
    }
    let mut winners = 0;
    for h in handles {
        if h.await.expect("join").is_none() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// A key is gone after its TTL, and can then be stored again.
pub async fn idempotency_key_expires<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    store.put_idempotency_if_absent("short", &rec("h", 1), SHORT).await.expect("put");
    store.put_idempotency_if_absent("long", &rec("h", 2), LONG).await.expect("put");
    let s = store.clone();
    let gone = eventually(WAIT, || {
        let s = s.clone();
        async move { s.get_idempotency("short").await.expect("get").is_none().then_some(()) }
    })
    .await;
    assert!(gone.is_some(), "idempotency key outlived its TTL");
    assert_eq!(store.idempotency_count().await.expect("count"), 1, "expired keys are not counted");
    assert_eq!(store.get_idempotency("long").await.expect("get"), Some(rec("h", 2)));
    let reput = store.put_idempotency_if_absent("short", &rec("h9", 9), LONG).await.expect("put");
    assert_eq!(reput, None);
}

/// Sessions read back, are replaced by later writes, expire, and can be deleted.
pub async fn session_roundtrip_and_expiry<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    store.put_session("s1", &session(1), LONG).await.expect("put");
    store.put_session("s1", &session(2), LONG).await.expect("put");
    assert_eq!(store.get_session("s1").await.expect("get"), Some(session(2)));
    store.put_session("s2", &session(3), SHORT).await.expect("put");
    assert_eq!(store.session_count().await.expect("count"), 2);
    let s = store.clone();
    let gone = eventually(WAIT, || {
        let s = s.clone();
        async move { s.get_session("s2").await.expect("get").is_none().then_some(()) }
    })
    .await;
    assert!(gone.is_some(), "session outlived its TTL");
    assert_eq!(store.session_count().await.expect("count"), 1);
    assert!(store.delete_session("s1").await.expect("delete"));
    assert!(!store.delete_session("s1").await.expect("delete again"));
    assert_eq!(store.get_session("s1").await.expect("get"), None);
}

/// Past the bound, the sessions that expire soonest are evicted, never the one just written.
pub async fn session_count_is_bounded<F: StoreFactory>(f: &F) {
    let (store, _) = f.fresh_pair(SessionLimits { max_sessions: 3 }).await;
    for i in 0..5u64 {
        // Later sessions expire later, so the first ones are evicted.
        let ttl = LONG + Duration::from_secs(i);
        store.put_session(&format!("s{i}"), &session(i), ttl).await.expect("put");
    }
    assert_eq!(store.session_count().await.expect("count"), 3);
    for i in 0..5u64 {
        let live = store.get_session(&format!("s{i}")).await.expect("get").is_some();
        assert_eq!(live, i >= 2, "session s{i}");
    }
    // A new session with the shortest TTL still survives its own write.
    store.put_session("short", &session(9), Duration::from_secs(60)).await.expect("put");
    assert_eq!(store.session_count().await.expect("count"), 3);
    assert!(store.get_session("short").await.expect("get").is_some());
    assert!(store.get_session("s2").await.expect("get").is_none());
}

/// `purge_expired` drops only expired records; reads stay correct before and after.
pub async fn purge_expired_removes_only_expired<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    store.put_idempotency_if_absent("short", &rec("h", 1), SHORT).await.expect("put");
    store.put_idempotency_if_absent("long", &rec("h", 2), LONG).await.expect("put");
    store.put_session("short", &session(1), SHORT).await.expect("put");
    store.put_session("long", &session(2), LONG).await.expect("put");
    tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
    store.purge_expired().await.expect("purge");
    let s: Arc<F::Store> = store.clone();
    assert_eq!(s.get_idempotency("short").await.expect("get"), None);
    assert_eq!(s.get_session("short").await.expect("get"), None);
    assert_eq!(s.get_idempotency("long").await.expect("get"), Some(rec("h", 2)));
    assert_eq!(s.get_session("long").await.expect("get"), Some(session(2)));
    assert_eq!(s.session_count().await.expect("count"), 1);
}
