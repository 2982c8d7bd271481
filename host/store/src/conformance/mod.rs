//! The one test suite every backend must pass.
//!
//! A backend crate implements [`StoreFactory`] in its tests and expands
//! [`conformance_tests!`](crate::conformance_tests) with an async expression that yields
//! `Option<factory>` (`None` skips every case, e.g. when a test server is not configured). The
//! macro writes one `#[tokio::test]` per case, so failures name the property that broke:
//!
//! ```ignore
//! miroir_store::conformance_tests!(async { Some(MyFactory::new()) });
//! ```
//!
//! The cases use real time with short TTLs (a few hundred milliseconds) and bounded waits.

mod indexes;
mod jobs;
mod kv;
mod leader;
mod leases;
mod prune;
mod tasks;
mod ttl;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{SessionLimits, TaskStore};

pub use indexes::*;
pub use jobs::*;
pub use kv::*;
pub use leader::*;
pub use leases::*;
pub use prune::*;
pub use tasks::*;
pub use ttl::*;

/// Makes stores for the suite.
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// The backend under test.
    type Store: TaskStore;

    /// Two handles (separate connections) on one fresh, empty namespace that no other call
    /// shares, with the given session bound. Panics if the backend cannot be reached.
    async fn fresh_pair(&self, sessions: SessionLimits) -> (Arc<Self::Store>, Arc<Self::Store>);

    /// One handle on a fresh namespace with the default session bound.
    async fn fresh(&self) -> Arc<Self::Store> {
        self.fresh_pair(SessionLimits::default()).await.0
    }
}

/// Polls `check` every 10 ms until it yields `Some` or `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is an async expression
/// yielding `Option<impl StoreFactory>`, evaluated once per case; `None` skips the case.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            task_uids_strictly_increase,
            task_sequence_is_raised_never_lowered,
            task_roundtrip_and_update,
            task_listing_filters,
            task_listing_date_bounds,
            task_listing_pagination,
            prune_removes_only_old_terminal_tasks,
            prune_deletes_in_bounded_batches_oldest_first,
            fenced_prune_is_refused_after_a_newer_leader,
            delete_removes_only_finished_tasks,
            index_catalog_crud,
            settings_version_bumps_atomically,
            idempotency_put_if_absent,
            idempotency_concurrent_single_winner,
            idempotency_key_expires,
            session_roundtrip_and_expiry,
            session_count_is_bounded,
            purge_expired_removes_only_expired,
            job_lifecycle,
            job_operations_need_the_claim,
            concurrent_claimers_take_each_job_once,
            expired_claim_is_reclaimed_by_another_worker,
            requeue_expired_jobs_counts,
            rebalance_compare_and_set,
            plugin_kv_is_namespaced,
            cdc_cursor_is_monotonic,
            cdc_log_pages_in_order_and_trims,
            a_task_and_its_change_event_are_recorded_together,
            lease_is_exclusive_between_handles,
            fencing_tokens_strictly_increase,
            lease_renew_and_release_only_by_holder,
            stale_fence_is_refused,
            one_leader_and_failover_after_crash,
            graceful_release_hands_over_quickly,
            deposed_leader_late_write_is_refused
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(factory) = $factory.await else { return };
                $crate::conformance::$case(&factory).await;
            }
        )*
    };
}
