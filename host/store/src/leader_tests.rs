//! The elector's reaction to its store, against an in-memory lease store that can be told to
//! fail, on tokio's paused clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::{Fence, Lease, LeaseOutcome, LeaseStore, StoreError, StoreResult};

#[derive(Default)]
struct FakeLeases {
    holder: Mutex<Option<(String, u64)>>,
    tokens: AtomicU64,
    failing: AtomicBool,
    released: AtomicBool,
}

impl FakeLeases {
    fn check(&self) -> StoreResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("down".into()))
        } else {
            Ok(())
        }
    }

    fn lease(holder: &str, token: u64) -> Lease {
        Lease {
            name: LEADER_LEASE.into(),
            holder: holder.into(),
            token,
            remaining: Duration::from_secs(30),
        }
    }
}

#[async_trait]
impl LeaseStore for FakeLeases {
    async fn acquire_lease(&self, _: &str, holder: &str, _: Duration) -> StoreResult<LeaseOutcome> {
        self.check()?;
        let mut current = self.holder.lock().expect("lock");
        match &*current {
            Some((h, t)) if h != holder => Ok(LeaseOutcome::HeldByOther(Self::lease(h, *t))),
            Some((h, t)) => Ok(LeaseOutcome::Acquired(Self::lease(h, *t))),
            None => {
                let token = self.tokens.fetch_add(1, Ordering::SeqCst) + 1;
                *current = Some((holder.to_owned(), token));
                Ok(LeaseOutcome::Acquired(Self::lease(holder, token)))
            }
        }
    }

    async fn renew_lease(
        &self,
        _: &str,
        holder: &str,
        token: u64,
        _: Duration,
    ) -> StoreResult<Option<Lease>> {
        self.check()?;
        let current = self.holder.lock().expect("lock");
        Ok((current.as_ref() == Some(&(holder.to_owned(), token)))
            .then(|| Self::lease(holder, token)))
    }

    async fn release_lease(&self, _: &str, holder: &str, token: u64) -> StoreResult<bool> {
        let mut current = self.holder.lock().expect("lock");
        if current.as_ref() == Some(&(holder.to_owned(), token)) {
            *current = None;
            self.released.store(true, Ordering::SeqCst);
            return Ok(true);
        }
        Ok(false)
    }

    async fn current_lease(&self, _: &str) -> StoreResult<Option<Lease>> {
        Ok(self.holder.lock().expect("lock").as_ref().map(|(h, t)| Self::lease(h, *t)))
    }

    async fn check_fence(&self, _: &Fence) -> StoreResult<()> {
        Ok(())
    }
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn failed_renewal_flips_to_follower_at_once() {
    let store = Arc::new(FakeLeases::default());
    let handle = LeaderElector::spawn(Arc::clone(&store), LeaderConfig::new("me"));
    settle().await;
    let state = handle.state();
    assert!(state.is_leader && state.fencing_token == Some(1), "{state:?}");
    assert_eq!(handle.fence(), Some(Fence { lease: LEADER_LEASE.into(), token: 1 }));

    store.failing.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert!(!handle.state().is_leader, "follower right after the first failed renewal");
    assert_eq!(handle.fence(), None);
}

#[tokio::test(start_paused = true)]
async fn lost_lease_flips_to_follower_and_reports_the_new_leader() {
    let store = Arc::new(FakeLeases::default());
    let handle = LeaderElector::spawn(Arc::clone(&store), LeaderConfig::new("me"));
    settle().await;
    assert!(handle.state().is_leader);
    *store.holder.lock().expect("lock") = Some(("other".into(), 7));
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    let state = handle.state();
    assert!(!state.is_leader);
    assert_eq!(state.leader_id.as_deref(), Some("other"));
}

#[tokio::test(start_paused = true)]
async fn release_gives_the_lease_back() {
    let store = Arc::new(FakeLeases::default());
    let handle = LeaderElector::spawn(Arc::clone(&store), LeaderConfig::new("me"));
    settle().await;
    let watch = handle.subscribe();
    handle.release().await.expect("release");
    assert!(store.released.load(Ordering::SeqCst));
    assert!(!watch.borrow().is_leader);
}

#[test]
fn call_timeout_stays_inside_the_ttl() {
    let cfg = LeaderConfig::new("me");
    assert_eq!(cfg.call_timeout(), Duration::from_secs(10));
    let tight = cfg.with_timing(Duration::from_secs(1), Duration::from_millis(800));
    assert_eq!(tight.call_timeout(), Duration::from_millis(200));
}
