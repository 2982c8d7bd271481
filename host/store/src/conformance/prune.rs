//! Cases for fenced task pruning: bounded batches, oldest first, refused for a deposed leader.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::StoreFactory;
use crate::prelude::*;
use crate::{Fence, LeaseOutcome, NewTask, StoreError, TaskStatus, TaskStore};

const LEASE: &str = "leader";

fn base() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid date")
}

/// Takes the `leader` lease for `holder` and returns its fence; panics if someone holds it.
async fn acquire_fence<S: TaskStore + ?Sized>(store: &S, holder: &str) -> Fence {
    let ttl = std::time::Duration::from_secs(30);
    match store.acquire_lease(LEASE, holder, ttl).await.expect("acquire") {
        LeaseOutcome::Acquired(lease) => Fence { lease: LEASE.to_owned(), token: lease.token },
        LeaseOutcome::HeldByOther(lease) => panic!("lease held by {}", lease.holder),
    }
}

/// The fence of a fresh `leader` lease on `store`, for cases that prune as the only leader.
pub(crate) async fn leader_fence<S: TaskStore + ?Sized>(store: &S) -> Fence {
    acquire_fence(store, "pruner").await
}

/// Records a succeeded task that finished at `finished_at`; returns its uid.
async fn finished_task<S: TaskStore + ?Sized>(store: &S, finished_at: OffsetDateTime) -> u64 {
    let new = NewTask {
        index_uid: Some("movies".to_owned()),
        kind: "documentAdditionOrUpdate".to_owned(),
        status: TaskStatus::Enqueued,
        enqueued_at: base(),
        details: None,
        node_tasks: BTreeMap::from([("n1".to_owned(), 1)]),
    };
    let mut task = store.create_task(new).await.expect("create");
    task.status = TaskStatus::Succeeded;
    task.started_at = Some(base());
    task.finished_at = Some(finished_at);
    store.update_task(&task).await.expect("update");
    task.uid
}

async fn exists<S: TaskStore + ?Sized>(store: &S, uid: u64) -> bool {
    store.get_task(uid).await.expect("get").is_some()
}

/// A batch deletes at most `limit` tasks, earliest finish first (not uid order), with the exact
/// cutoff (a task finished one nanosecond after it stays); a short batch means nothing is left.
pub async fn prune_deletes_in_bounded_batches_oldest_first<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let fence = leader_fence(&*store).await;
    let cutoff = base() + Duration::seconds(100);
    let mut by_finish = BTreeMap::new();
    for secs in [5, 2, 6, 0, 3, 1, 4] {
        let uid = finished_task(&*store, base() + Duration::seconds(secs)).await;
        by_finish.insert(secs, uid);
    }
    let just_before = finished_task(&*store, cutoff - Duration::nanoseconds(1)).await;
    let just_after = finished_task(&*store, cutoff + Duration::nanoseconds(1)).await;

    assert_eq!(store.prune_tasks(cutoff, 3, &fence).await.expect("batch 1"), 3);
    for (secs, uid) in &by_finish {
        assert_eq!(exists(&*store, *uid).await, *secs >= 3, "after batch 1, task done at {secs}s");
    }
    assert_eq!(store.prune_tasks(cutoff, 3, &fence).await.expect("batch 2"), 3);
    for (secs, uid) in &by_finish {
        assert_eq!(exists(&*store, *uid).await, *secs >= 6, "after batch 2, task done at {secs}s");
    }
    assert_eq!(store.prune_tasks(cutoff, 3, &fence).await.expect("batch 3"), 2, "a short batch");
    assert!(!exists(&*store, just_before).await, "finished 1 ns before the cutoff: pruned");
    assert!(exists(&*store, just_after).await, "finished 1 ns after the cutoff: kept");
    assert_eq!(store.prune_tasks(cutoff, 3, &fence).await.expect("batch 4"), 0);
}

/// A deposed leader's fence is refused, atomically with the delete: nothing is deleted, even
/// when there is nothing left to delete; the new leader's fence prunes.
pub async fn fenced_prune_is_refused_after_a_newer_leader<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let cutoff = base() + Duration::days(1);
    let never = Fence { lease: LEASE.to_owned(), token: 1 };
    let mut uids = Vec::new();
    for secs in 0..4 {
        uids.push(finished_task(&*a, base() + Duration::seconds(secs)).await);
    }
    let r = a.prune_tasks(cutoff, 10, &never).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "fence of a lease never issued: {r:?}");

    let old = acquire_fence(&*a, "a").await;
    assert_eq!(a.prune_tasks(cutoff, 1, &old).await.expect("current fence prunes"), 1);
    assert!(a.release_lease(LEASE, "a", old.token).await.expect("release"));
    let new = acquire_fence(&*b, "b").await;
    assert!(new.token > old.token);

    let r = a.prune_tasks(cutoff, 10, &old).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "stale prune: {r:?}");
    for uid in &uids[1..] {
        assert!(exists(&*b, *uid).await, "a refused prune deleted task {uid}");
    }
    let mistaken = Fence { lease: LEASE.to_owned(), token: new.token + 1 };
    let r = a.prune_tasks(cutoff, 10, &mistaken).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "a token never issued: {r:?}");

    assert_eq!(b.prune_tasks(cutoff, 10, &new).await.expect("new leader prunes"), 3);
    let r = a.prune_tasks(cutoff, 10, &old).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "stale prune with nothing left: {r:?}");
}
