//! One write to an index at a time, across every instance sharing the task store.
//!
//! Nodes apply an index's tasks in the order they receive them. Two writes sent at the same
//! moment by two instances (or two requests of one) could reach node A in one order and node B
//! in the other, leaving replicas with different documents and nodes with different settings.
//! So a write holds the instance's own lock for the index and the store lease
//! `index-write/{uid}` while it sends its requests to the nodes; every node then receives the
//! index's writes in the same order. The lease is released as soon as the requests are sent
//! (the nodes process them later), so it is held for one fan-out, not for the indexing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use miroir_store::{LeaseHolder, LeaseOutcome};
use miroir_types::{ApiError, ErrorCode};
use tokio::sync::OwnedMutexGuard;

use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// How much longer than the lease's lifetime a write waits for another instance's write to the
/// same index: a lease left by an instance that died expires by then, so waiting writes proceed.
/// A lease left by a dead process of this machine (this instance before a restart) is released
/// at once instead (see [`LeaseHolder::is_dead_predecessor`]).
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// Distinguishes the acquisitions of one instance, so a late release never frees a lease a
/// later write of the same instance took.
static NEXT_HOLDER: AtomicU64 = AtomicU64::new(0);

/// Held while a write to one index is sent to the nodes; released when dropped.
pub struct IndexWriteGuard {
    /// This instance's lock of the index, held until the lease is released: the next write of
    /// this instance then finds the lease free instead of backing off from its own.
    local: Option<OwnedMutexGuard<()>>,
    state: AppState,
    lease: String,
    holder: String,
    token: u64,
}

impl AppState {
    /// Waits until this request may send a write to `index` (see the module documentation).
    /// `miroir_timeout` if another instance keeps the index for longer than the lease's lifetime
    /// (30 s, or three node timeouts when that is longer) plus 5 s.
    pub async fn index_write_guard(&self, index: &str) -> HttpResult<IndexWriteGuard> {
        let local = self.write_lock(index).lock_owned().await;
        let lease = format!("index-write/{index}");
        let holder =
            format!("{}|{}", self.instance_tag(), NEXT_HOLDER.fetch_add(1, Ordering::Relaxed));
        let me = LeaseHolder::parse(self.instance_tag());
        // A write's fan-out waits at most a few node timeouts; the lease outlives it.
        let ttl = (self.config().scatter.node_timeout.get() * 3).max(Duration::from_secs(30));
        let deadline = tokio::time::Instant::now() + ttl + WAIT_MARGIN;
        let mut pause = Duration::from_millis(2);
        loop {
            match self.store().acquire_lease(&lease, &holder, ttl).await? {
                LeaseOutcome::Acquired(acquired) => {
                    return Ok(IndexWriteGuard {
                        local: Some(local),
                        state: self.clone(),
                        lease,
                        holder,
                        token: acquired.token,
                    });
                }
                LeaseOutcome::HeldByOther(other)
                    if me.as_ref().is_some_and(|me| me.is_dead_predecessor(&other.holder)) =>
                {
                    // Left by a process of this machine that died mid-write (this instance
                    // before a crash): nothing can still be sending under it.
                    tracing::info!(%lease, holder = %other.holder, "releasing the write lease of a dead process");
                    if !self.store().release_lease(&lease, &other.holder, other.token).await? {
                        tokio::time::sleep(pause).await;
                    }
                }
                LeaseOutcome::HeldByOther(other) => {
                    if tokio::time::Instant::now() + pause > deadline {
                        return Err(HttpError::Api(ApiError::new(
                            ErrorCode::MiroirTimeout,
                            format!(
                                "Another Miroir instance (`{}`) has been writing to index \
                                 `{index}` for too long. Retry the request.",
                                other.holder
                            ),
                        )));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }
}

impl Drop for IndexWriteGuard {
    fn drop(&mut self) {
        let (state, lease, holder, token) =
            (self.state.clone(), self.lease.clone(), self.holder.clone(), self.token);
        let local = self.local.take();
        // Released in the background (the request does not wait for it), this instance's lock
        // of the index with it; the holder is unique, so this can only free this write's own
        // acquisition. If it never runs, the lease expires by itself.
        tokio::spawn(async move {
            if let Err(error) = state.store().release_lease(&lease, &holder, token).await {
                tracing::warn!(%error, %lease, "cannot release an index write lease");
            }
            drop(local);
        });
    }
}
