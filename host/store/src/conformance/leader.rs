//! Cases for leader election over two store handles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{eventually, StoreFactory};
use crate::prelude::*;
use crate::{LeaderConfig, LeaderElector, LeaderHandle, LeaderState, StoreError, TaskStore};

const TTL: Duration = Duration::from_secs(1);
const RENEW: Duration = Duration::from_millis(250);

fn config(id: &str) -> LeaderConfig {
    LeaderConfig::new(id).with_timing(TTL, RENEW)
}

fn spawn<S: TaskStore>(store: &Arc<S>, id: &str) -> LeaderHandle {
    LeaderElector::spawn(Arc::clone(store), config(id))
}

async fn until_leader(handle: &LeaderHandle, within: Duration) -> Option<LeaderState> {
    let mut rx = handle.subscribe();
    tokio::time::timeout(within, async {
        loop {
            let state = rx.borrow_and_update().clone();
            if state.is_leader {
                return Some(state);
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Waits until exactly one of two electors leads; returns (leader, follower) ids' handles.
async fn one_leader(a: LeaderHandle, b: LeaderHandle) -> (LeaderHandle, LeaderHandle) {
    let decided = eventually(Duration::from_secs(5), || {
        let (sa, sb) = (a.state(), b.state());
        async move {
            match (sa.is_leader, sb.is_leader) {
                (true, true) => panic!("two leaders at once: {sa:?} {sb:?}"),
                (true, false) if sb.leader_id.as_deref() == Some("a") => Some(true),
                (false, true) if sa.leader_id.as_deref() == Some("b") => Some(false),
                _ => None,
            }
        }
    })
    .await
    .expect("a leader elected and seen by the follower");
    if decided {
        (a, b)
    } else {
        (b, a)
    }
}

/// Exactly one of two electors leads; when it crashes, the other leads within the TTL with a
/// larger fencing token.
pub async fn one_leader_and_failover_after_crash<F: StoreFactory>(f: &F) {
    let (sa, sb) = f.fresh_pair(Default::default()).await;
    let (leader, follower) = one_leader(spawn(&sa, "a"), spawn(&sb, "b")).await;
    tokio::time::sleep(TTL + RENEW).await;
    assert!(leader.state().is_leader && !follower.state().is_leader, "leadership is stable");
    let old_token = leader.state().fencing_token.expect("leader has a token");
    let crashed = Instant::now();
    leader.abort();
    let state = until_leader(&follower, TTL + Duration::from_millis(700))
        .await
        .expect("the follower took over");
    let took = crashed.elapsed();
    assert!(took <= TTL + Duration::from_millis(300), "takeover took {took:?}");
    assert!(state.fencing_token.expect("token") > old_token);
    follower.release().await.expect("release");
}

/// A graceful release lets the other elector lead well before the TTL would have run out.
pub async fn graceful_release_hands_over_quickly<F: StoreFactory>(f: &F) {
    let (sa, sb) = f.fresh_pair(Default::default()).await;
    let long = |id: &str| LeaderConfig::new(id).with_timing(Duration::from_secs(10), RENEW);
    let a = LeaderElector::spawn(Arc::clone(&sa), long("a"));
    let b = LeaderElector::spawn(Arc::clone(&sb), long("b"));
    let (leader, follower) = one_leader(a, b).await;
    let mut watch = leader.subscribe();
    let released = Instant::now();
    leader.release().await.expect("release");
    assert!(!watch.borrow_and_update().is_leader, "released elector reports follower");
    let state = until_leader(&follower, Duration::from_secs(3)).await.expect("handover");
    assert!(released.elapsed() < Duration::from_secs(2), "handover took {:?}", released.elapsed());
    assert!(state.is_leader);
    assert!(sa.current_lease("leader").await.expect("current").is_some());
    follower.release().await.expect("release");
    assert!(sa.current_lease("leader").await.expect("current").is_none(), "lease freed");
}

/// A leader that stalls past its TTL flips to follower, and its late fenced write is refused.
pub async fn deposed_leader_late_write_is_refused<F: StoreFactory>(f: &F) {
    let (sa, sb) = f.fresh_pair(Default::default()).await;
    let a = spawn(&sa, "a");
    until_leader(&a, Duration::from_secs(3)).await.expect("a leads");
    let stale = a.fence().expect("leader has a fence");
    sa.save_rebalance("run", 0, &json!({"by": "a"}), Some(&stale)).await.expect("a writes");
    // "a" crashes without releasing; "b" takes over once the lease expires.
    a.abort();
    let b = spawn(&sb, "b");
    until_leader(&b, TTL * 3).await.expect("b leads");
    let fresh = b.fence().expect("b has a fence");
    assert!(fresh.token > stale.token);
    let late = sa.save_rebalance("run", 1, &json!({"by": "a-late"}), Some(&stale)).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "late write: {late:?}");
    sb.save_rebalance("run", 1, &json!({"by": "b"}), Some(&fresh)).await.expect("b writes");
    b.release().await.expect("release");
}
