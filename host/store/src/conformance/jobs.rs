//! Cases for the background job queue.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::{eventually, StoreFactory};
use crate::prelude::*;
use crate::{JobDepth, JobState, StoreError};

const LEASE: Duration = Duration::from_secs(60);

fn depth(queued: u64, claimed: u64, failed: u64) -> JobDepth {
    JobDepth { queued, claimed, failed }
}

/// Jobs are claimed oldest first; complete deletes; fail re-queues or parks; depth follows.
pub async fn job_lifecycle<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    assert_eq!(store.claim_job("w", LEASE).await.expect("claim empty"), None);
    let a = store.enqueue_job("repair", &json!({ "shard": 1 })).await.expect("enqueue");
    let b = store.enqueue_job("repair", &json!({ "shard": 2 })).await.expect("enqueue");
    let c = store.enqueue_job("copy", &json!({ "shard": 3 })).await.expect("enqueue");
    assert!(a < b && b < c);
    assert_eq!(store.job_depth().await.expect("depth"), depth(3, 0, 0));

    let job = store.claim_job("w1", LEASE).await.expect("claim").expect("a job");
    assert_eq!((job.id, job.kind.as_str(), job.state), (a, "repair", JobState::Claimed));
    assert_eq!(
        (job.payload.clone(), job.attempts, job.worker.as_deref()),
        (json!({"shard": 1}), 1, Some("w1"))
    );
    store.extend_job(a, "w1", LEASE).await.expect("extend");
    store.complete_job(a, "w1").await.expect("complete");
    assert_eq!(store.get_job(a).await.expect("get"), None);

    let job = store.claim_job("w1", LEASE).await.expect("claim").expect("b");
    assert_eq!(job.id, b);
    store.fail_job(b, "w1", "node down", true).await.expect("fail with retry");
    let retried = store.get_job(b).await.expect("get").expect("b kept");
    assert_eq!(
        (retried.state, retried.last_error.as_deref(), retried.worker),
        (JobState::Queued, Some("node down"), None)
    );

    let job = store.claim_job("w2", LEASE).await.expect("claim").expect("b again");
    assert_eq!((job.id, job.attempts), (b, 2), "the re-queued older job comes before c");
    assert_eq!(store.job_depth().await.expect("depth"), depth(1, 1, 0));
    store.fail_job(b, "w2", "gave up", false).await.expect("fail");
    let failed = store.get_job(b).await.expect("get").expect("b kept");
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(store.job_depth().await.expect("depth"), depth(1, 0, 1));
    let job = store.claim_job("w2", LEASE).await.expect("claim").expect("c");
    assert_eq!(job.id, c);
    assert_eq!(store.claim_job("w2", LEASE).await.expect("claim"), None, "failed jobs stay parked");
}

/// Extend, complete and fail by a worker that does not hold the claim are refused.
pub async fn job_operations_need_the_claim<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let id = store.enqueue_job("x", &json!(null)).await.expect("enqueue");
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict(_)));
    assert!(conflict(store.complete_job(id, "w1").await), "queued job completed");
    store.claim_job("w1", LEASE).await.expect("claim").expect("job");
    assert!(conflict(store.extend_job(id, "w2", LEASE).await));
    assert!(conflict(store.complete_job(id, "w2").await));
    assert!(conflict(store.fail_job(id, "w2", "e", true).await));
    assert!(conflict(store.complete_job(id + 100, "w1").await), "missing job completed");
    store.complete_job(id, "w1").await.expect("holder completes");
    assert!(conflict(store.complete_job(id, "w1").await), "completed twice");
}

/// Eight workers claiming 200 jobs concurrently (on two handles) never share one.
pub async fn concurrent_claimers_take_each_job_once<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let mut ids = BTreeSet::new();
    for i in 0..200 {
        ids.insert(a.enqueue_job("bulk", &json!(i)).await.expect("enqueue"));
    }
    let mut workers = Vec::new();
    for w in 0..8 {
        let store = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            let mut mine = Vec::new();
            while let Some(job) = store.claim_job(&worker, LEASE).await.expect("claim") {
                assert_eq!(job.worker.as_deref(), Some(worker.as_str()));
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.expect("join"));
    }
    let unique: BTreeSet<u64> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "a job was claimed twice");
    assert_eq!(unique, ids, "every job claimed");
    assert_eq!(a.job_depth().await.expect("depth"), depth(0, 200, 0));
}

/// A claim whose lease ended goes to the next worker; the old holder lost it.
pub async fn expired_claim_is_reclaimed_by_another_worker<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let id = a.enqueue_job("x", &json!({})).await.expect("enqueue");
    a.claim_job("crashed", Duration::from_millis(200)).await.expect("claim").expect("job");
    assert_eq!(b.claim_job("w2", LEASE).await.expect("claim"), None, "claim still live");
    let b2 = b.clone();
    let job = eventually(Duration::from_secs(3), || {
        let b = b2.clone();
        async move { b.claim_job("w2", LEASE).await.expect("claim") }
    })
    .await
    .expect("reclaimed after the lease");
    assert_eq!((job.id, job.attempts, job.worker.as_deref()), (id, 2, Some("w2")));
    let late = a.complete_job(id, "crashed").await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    b.complete_job(id, "w2").await.expect("complete");
}

/// `requeue_expired_jobs` moves back exactly the expired claims.
pub async fn requeue_expired_jobs_counts<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    for i in 0..3 {
        store.enqueue_job("x", &json!(i)).await.expect("enqueue");
    }
    store.claim_job("w", Duration::from_millis(100)).await.expect("claim").expect("job");
    store.claim_job("w", Duration::from_millis(100)).await.expect("claim").expect("job");
    let kept = store.claim_job("w", LEASE).await.expect("claim").expect("job");
    assert_eq!(store.requeue_expired_jobs().await.expect("requeue"), 0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(store.requeue_expired_jobs().await.expect("requeue"), 2);
    assert_eq!(store.job_depth().await.expect("depth"), depth(2, 1, 0));
    store.extend_job(kept.id, "w", LEASE).await.expect("live claim extends");
}
