//! One write to an index at a time, across every instance sharing the task store.
//!
//! Nodes apply an index's tasks in the order they receive them. Two writes sent at the same
//! moment by two instances (or two requests of one) could reach node A in one order and node B
//! in the other, leaving replicas with different documents and nodes with different settings.
//! So a write holds the instance's own lock for the index and the store lease
//! `index-write/{uid}` while it sends its requests to the nodes; every node then receives the
//! index's writes in the same order. The lease is released as soon as the requests are sent
//! (the nodes process them later), so it is held for one fan-out, not for the indexing; when
//! more writes of this instance wait for the index, it passes to the next one instead (no
//! store call), confirmed in the store at least every [`CONFIRM_EVERY`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use miroir_store::{LeaseHolder, LeaseOutcome};
use miroir_types::{ApiError, ErrorCode};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::time::Instant;

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

/// How long a lease passed from write to write of this instance is used without asking the
/// store whether it still holds it (and renewing it there).
const CONFIRM_EVERY: Duration = Duration::from_secs(1);

/// This instance's lock of one index, and the store lease it holds between two of its writes.
#[derive(Default)]
pub struct IndexLock {
    /// Writes of this instance waiting for the lock.
    waiting: AtomicUsize,
    held: Arc<Mutex<Option<HeldLease>>>,
}

/// The store lease `index-write/{uid}` as this instance holds it.
struct HeldLease {
    holder: String,
    token: u64,
    /// When the store last confirmed it.
    confirmed: Instant,
}

/// Held while a write to one index is sent to the nodes; released when dropped.
pub struct IndexWriteGuard {
    /// This instance's lock of the index, with the lease in it; kept until the lease is released
    /// (or handed to the next waiting write), so the next write of this instance never finds its
    /// own lease in the store and backs off from it.
    local: Option<OwnedMutexGuard<Option<HeldLease>>>,
    lock: Arc<IndexLock>,
    state: AppState,
    lease: String,
}

impl AppState {
    /// How many writes of this instance wait for `index`'s lock now.
    pub fn index_writes_waiting(&self, index: &str) -> usize {
        self.write_lock(index).waiting.load(Ordering::SeqCst)
    }

    /// Waits until this request may send a write to `index` (see the module documentation).
    /// `miroir_timeout` if another instance keeps the index for longer than the lease's lifetime
    /// (30 s, or three node timeouts when that is longer) plus 5 s.
    pub async fn index_write_guard(&self, index: &str) -> HttpResult<IndexWriteGuard> {
        let lock = self.write_lock(index);
        let local = {
            let _waiting = Waiting::new(&lock.waiting);
            Arc::clone(&lock.held).lock_owned().await
        };
        // From here, dropping the guard (also when this future is dropped) releases the lease
        // or hands it on.
        let mut guard = IndexWriteGuard {
            local: Some(local),
            lock,
            state: self.clone(),
            lease: format!("index-write/{index}"),
        };
        let lease = guard.lease.clone();
        let local = guard.local.as_mut().expect("set above");
        // A write's fan-out waits at most a few node timeouts; the lease outlives it.
        let ttl = (self.config().scatter.node_timeout.get() * 3).max(Duration::from_secs(30));
        if let Some(held) = local.as_mut() {
            // Passed on by the previous write of this instance.
            if held.confirmed.elapsed() < CONFIRM_EVERY {
                return Ok(guard);
            }
            match self.store().acquire_lease(&lease, &held.holder, ttl).await {
                Ok(LeaseOutcome::Acquired(renewed)) if renewed.token == held.token => {
                    held.confirmed = Instant::now();
                    return Ok(guard);
                }
                // Lost (the store lost it, or it expired and another instance took it): taken
                // again below like any other write.
                Ok(_) => **local = None,
                Err(error) => {
                    **local = None;
                    return Err(error.into());
                }
            }
        }
        let holder =
            format!("{}|{}", self.instance_tag(), NEXT_HOLDER.fetch_add(1, Ordering::Relaxed));
        let me = LeaseHolder::parse(self.instance_tag());
        let deadline = Instant::now() + ttl + WAIT_MARGIN;
        let mut pause = Duration::from_millis(2);
        loop {
            match self.store().acquire_lease(&lease, &holder, ttl).await? {
                LeaseOutcome::Acquired(acquired) => {
                    **local = Some(HeldLease {
                        holder,
                        token: acquired.token,
                        confirmed: Instant::now(),
                    });
                    return Ok(guard);
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
                    if Instant::now() + pause > deadline {
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

/// Counts a write waiting for an index's lock while it exists.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for IndexWriteGuard {
    fn drop(&mut self) {
        let Some(mut local) = self.local.take() else { return };
        if self.lock.waiting.load(Ordering::SeqCst) > 0 {
            // The next write of this instance takes the lock, and the lease with it.
            return;
        }
        let (state, lease) = (self.state.clone(), self.lease.clone());
        // Released in the background (the request does not wait for it), this instance's lock
        // of the index with it; the holder is unique, so this can only free this write's own
        // acquisition. If it never runs, the lease expires by itself.
        tokio::spawn(async move {
            if let Some(held) = local.take() {
                if let Err(error) =
                    state.store().release_lease(&lease, &held.holder, held.token).await
                {
                    tracing::warn!(%error, %lease, "cannot release an index write lease");
                }
            }
            drop(local);
        });
    }
}
