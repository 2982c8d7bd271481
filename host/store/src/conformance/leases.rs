//! Cases for leases and fencing tokens.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::{eventually, StoreFactory};
use crate::prelude::*;
use crate::{Fence, IndexMeta, LeaseOutcome, StoreError};

const TTL: Duration = Duration::from_secs(30);

fn acquired(outcome: LeaseOutcome) -> Option<u64> {
    match outcome {
        LeaseOutcome::Acquired(lease) => Some(lease.token),
        LeaseOutcome::HeldByOther(_) => None,
    }
}

/// Two handles: only one holds the lease; the other sees who does.
pub async fn lease_is_exclusive_between_handles<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let token = acquired(a.acquire_lease("leader", "a", TTL).await.expect("acquire"));
    let token = token.expect("free lease acquired");
    match b.acquire_lease("leader", "b", TTL).await.expect("acquire") {
        LeaseOutcome::HeldByOther(lease) => {
            assert_eq!((lease.holder.as_str(), lease.token), ("a", token));
            assert!(lease.remaining > Duration::from_secs(20) && lease.remaining <= TTL);
        }
        other => panic!("second holder got {other:?}"),
    }
    let again = acquired(a.acquire_lease("leader", "a", TTL).await.expect("re-acquire"));
    assert_eq!(again, Some(token), "the holder keeps its token");
    let current = b.current_lease("leader").await.expect("current").expect("held");
    assert_eq!((current.holder.as_str(), current.token), ("a", token));
    assert!(b.current_lease("other").await.expect("current").is_none());
    assert!(acquired(b.acquire_lease("other", "b", TTL).await.expect("acquire")).is_some());
}

/// Every new acquisition, after release or expiry and from either handle, gets a larger token.
pub async fn fencing_tokens_strictly_increase<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let t1 = acquired(a.acquire_lease("l", "a", TTL).await.expect("acquire")).expect("t1");
    assert!(a.release_lease("l", "a", t1).await.expect("release"));
    let t2 = acquired(b.acquire_lease("l", "b", TTL).await.expect("acquire")).expect("t2");
    assert!(t2 > t1);
    assert!(b.release_lease("l", "b", t2).await.expect("release"));
    let t3 =
        acquired(b.acquire_lease("l", "b", Duration::from_millis(150)).await.expect("acquire"));
    let t3 = t3.expect("t3");
    assert!(t3 > t2, "re-acquiring after release is a new acquisition");
    let a2 = a.clone();
    let t4 = eventually(Duration::from_secs(3), || {
        let a = a2.clone();
        async move { acquired(a.acquire_lease("l", "a", TTL).await.expect("acquire")) }
    })
    .await
    .expect("expired lease acquired");
    assert!(t4 > t3);
}

/// Renew and release work only for the holder with its token.
pub async fn lease_renew_and_release_only_by_holder<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let short = Duration::from_millis(300);
    let token = acquired(a.acquire_lease("l", "a", short).await.expect("acquire")).expect("token");
    assert!(b.renew_lease("l", "b", token, TTL).await.expect("renew").is_none());
    assert!(a.renew_lease("l", "a", token + 1, TTL).await.expect("renew").is_none());
    assert!(!b.release_lease("l", "b", token).await.expect("release"));
    let renewed = a.renew_lease("l", "a", token, TTL).await.expect("renew").expect("renewed");
    assert_eq!(renewed.token, token);
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert!(a.current_lease("l").await.expect("current").is_some(), "renewal extended the TTL");
    assert!(a.release_lease("l", "a", token).await.expect("release"));
    assert!(a.current_lease("l").await.expect("current").is_none());
    assert!(a.renew_lease("l", "a", token, TTL).await.expect("renew").is_none(), "released");
}

/// A fenced write with a token older than the latest issued one is refused, atomically.
pub async fn stale_fence_is_refused<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid date");
    let meta = IndexMeta::new("movies", 4, None, at);
    a.create_index(&meta).await.expect("create");
    let never = Fence { lease: "leader".into(), token: 1 };
    let r = a.check_fence(&never).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "fence of a lease never issued: {r:?}");

    let old = acquired(a.acquire_lease("leader", "a", TTL).await.expect("acquire")).expect("old");
    let old = Fence { lease: "leader".into(), token: old };
    a.check_fence(&old).await.expect("current fence passes");
    assert_eq!(a.bump_settings_version("movies", at, Some(&old)).await.expect("bump"), 1);
    assert_eq!(a.save_rebalance("r", 0, &json!(1), Some(&old)).await.expect("save"), 1);
    assert!(a.release_lease("leader", "a", old.token).await.expect("release"));
    let new = acquired(b.acquire_lease("leader", "b", TTL).await.expect("acquire")).expect("new");
    let new = Fence { lease: "leader".into(), token: new };

    let r = a.bump_settings_version("movies", at, Some(&old)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "stale bump: {r:?}");
    let r = a.save_rebalance("r", 1, &json!("late"), Some(&old)).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "stale save: {r:?}");
    assert!(matches!(a.check_fence(&old).await, Err(StoreError::Conflict(_))));
    let stored = a.get_rebalance("r").await.expect("get").expect("saved");
    assert_eq!((stored.version, stored.doc), (1, json!(1)), "refused write changed nothing");
    assert_eq!(b.save_rebalance("r", 1, &json!(2), Some(&new)).await.expect("save"), 2);
    assert_eq!(b.bump_settings_version("movies", at, Some(&new)).await.expect("bump"), 2);
}
