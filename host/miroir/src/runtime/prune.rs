//! Task pruning, leader-only: finished tasks past their retention are deleted in bounded
//! batches, every batch fenced with the token the leader held when the run started.
//!
//! A run does not consult the local view of leadership between batches: a process that was
//! paused (GC pause, `SIGSTOP`, an overloaded host) cannot know it was deposed until it asks
//! the store. The store checks the fence atomically with each delete, so the first batch after
//! a newer leader was elected is refused; the run stops there, counts the refusal in
//! `miroir_fenced_writes_refused_total{job="prune"}` and logs it.

use std::sync::Arc;
use std::time::Duration;

use miroir_config::TaskStoreConfig;
use miroir_store::{Fence, LeaderState, StoreError, TaskStore};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// The `job` label of fenced writes made by pruning.
const JOB: &str = "prune";

/// How pruning runs, from the `task_store` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSettings {
    /// Finished tasks older than this are pruned.
    pub retention: Duration,
    /// Time between the end of one run and the start of the next.
    pub interval: Duration,
    /// At most this many tasks per batch (at least 1).
    pub batch_size: usize,
    /// Wait between two batches of one run.
    pub batch_pause: Duration,
}

impl PruneSettings {
    /// The settings `config` asks for.
    pub fn from_config(config: &TaskStoreConfig) -> Self {
        PruneSettings {
            retention: config.task_retention.get(),
            interval: config.prune_interval.get(),
            batch_size: config.prune_batch_size.max(1),
            batch_pause: config.prune_batch_pause.get(),
        }
    }
}

/// How one pruning run ended.
#[derive(Debug)]
pub enum RunEnd {
    /// Nothing past the retention is left.
    Done {
        /// Tasks deleted by this run.
        pruned: u64,
    },
    /// The store refused a batch: a newer leader holds the lease.
    Fenced {
        /// Tasks deleted by this run before the refusal.
        pruned: u64,
    },
    /// The store failed; the next run tries again.
    Failed {
        /// Tasks deleted by this run before the failure.
        pruned: u64,
        /// What failed.
        error: StoreError,
    },
}

/// Leads, prunes, waits `interval`, again; a follower waits until it leads. Returns when the
/// leader state channel closes (the elector is gone).
pub async fn prune_loop(
    store: Arc<dyn TaskStore>,
    metrics: Arc<Metrics>,
    mut leader: watch::Receiver<LeaderState>,
    lease: String,
    settings: PruneSettings,
) {
    loop {
        let token = match leader.wait_for(|s| s.is_leader && s.fencing_token.is_some()).await {
            Ok(state) => state.fencing_token,
            Err(_) => return,
        };
        let Some(token) = token else { continue };
        let fence = Fence { lease: lease.clone(), token };
        match prune_run(&*store, &fence, &settings, &metrics).await {
            RunEnd::Done { pruned: 0 } => {}
            RunEnd::Done { pruned } => {
                tracing::info!(pruned, "pruned finished tasks past their retention");
            }
            RunEnd::Fenced { pruned } => tracing::warn!(
                pruned,
                fencing_token = token,
                "pruning stopped: a newer leader holds the lease, the late batch was refused"
            ),
            RunEnd::Failed { pruned, error } => {
                tracing::warn!(pruned, %error, "pruning tasks failed");
            }
        }
        tokio::time::sleep(settings.interval).await;
    }
}

/// One run: deletes batch after batch with `fence` (captured by the caller when the run
/// started) until a batch comes back short, the store refuses the fence, or it fails.
#[tracing::instrument(name = "prune", skip_all)]
pub async fn prune_run(
    store: &dyn TaskStore,
    fence: &Fence,
    settings: &PruneSettings,
    metrics: &Metrics,
) -> RunEnd {
    let cutoff = OffsetDateTime::now_utc() - settings.retention;
    let mut pruned = 0;
    loop {
        match store.prune_tasks(cutoff, settings.batch_size, fence).await {
            Ok(deleted) => {
                pruned += deleted;
                metrics.tasks_pruned.inc_by(deleted);
                if deleted < settings.batch_size as u64 {
                    return RunEnd::Done { pruned };
                }
            }
            Err(StoreError::Conflict(_)) => {
                metrics.fenced_writes_refused.with_label_values(&[JOB]).inc();
                return RunEnd::Fenced { pruned };
            }
            Err(error) => return RunEnd::Failed { pruned, error },
        }
        if !settings.batch_pause.is_zero() {
            tokio::time::sleep(settings.batch_pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use miroir_store::{LeaseOutcome, NewTask, TaskFilter, TaskStatus};
    use miroir_store_sqlite::{SqliteConfig, SqliteStore};

    use super::*;

    const LEASE: &str = "leader";

    async fn store(dir: &tempfile::TempDir) -> Arc<dyn TaskStore> {
        let config = SqliteConfig::new(dir.path().join("miroir.db"));
        Arc::new(SqliteStore::open(config).await.expect("open the SQLite store"))
    }

    /// `count` tasks that succeeded a year ago.
    async fn old_tasks(store: &dyn TaskStore, count: usize) {
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(365);
        for _ in 0..count {
            let new = NewTask {
                index_uid: Some("movies".into()),
                kind: "documentAdditionOrUpdate".into(),
                status: TaskStatus::Enqueued,
                enqueued_at: long_ago,
                details: None,
                node_tasks: BTreeMap::new(),
            };
            let mut task = store.create_task(new).await.expect("create");
            task.status = TaskStatus::Succeeded;
            task.finished_at = Some(long_ago);
            store.update_task(&task).await.expect("update");
        }
    }

    async fn fence(store: &dyn TaskStore, holder: &str) -> Fence {
        match store.acquire_lease(LEASE, holder, Duration::from_secs(30)).await.expect("acquire") {
            LeaseOutcome::Acquired(lease) => Fence { lease: LEASE.into(), token: lease.token },
            LeaseOutcome::HeldByOther(lease) => panic!("held by {}", lease.holder),
        }
    }

    async fn remaining(store: &dyn TaskStore) -> u64 {
        store.list_tasks(&TaskFilter { limit: 1, ..Default::default() }).await.expect("list").total
    }

    fn settings(batch_size: usize, batch_pause: Duration) -> PruneSettings {
        PruneSettings {
            retention: Duration::from_secs(3600),
            interval: Duration::from_secs(30),
            batch_size,
            batch_pause,
        }
    }

    #[tokio::test]
    async fn a_run_prunes_batch_after_batch_until_nothing_is_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(&dir).await;
        old_tasks(&*store, 7).await;
        let fence = fence(&*store, "a").await;
        let metrics = Metrics::new();
        let end = prune_run(&*store, &fence, &settings(3, Duration::ZERO), &metrics).await;
        assert!(matches!(end, RunEnd::Done { pruned: 7 }), "{end:?}");
        assert_eq!(metrics.tasks_pruned.get(), 7);
        assert_eq!(remaining(&*store).await, 0);
        assert_eq!(metrics.fenced_writes_refused.with_label_values(&[JOB]).get(), 0);
    }

    /// The fence captured at the start of a run is used for every batch: once another holder
    /// takes the lease mid-run, the next batch is refused, counted, and the run stops.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_stops_at_the_first_batch_refused_for_a_stale_fence() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(&dir).await;
        old_tasks(&*store, 20).await;
        let old = fence(&*store, "a").await;
        let old_token = old.token;
        let metrics = Arc::new(Metrics::new());
        let run = tokio::spawn({
            let (store, metrics) = (Arc::clone(&store), Arc::clone(&metrics));
            async move {
                let gentle = settings(1, Duration::from_millis(100));
                prune_run(&*store, &old, &gentle, &metrics).await
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while metrics.tasks_pruned.get() == 0 {
            assert!(Instant::now() < deadline, "the run never pruned a first batch");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.release_lease(LEASE, "a", old_token).await.expect("release"));
        fence(&*store, "b").await;
        let end = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run stops")
            .expect("the run does not panic");
        let RunEnd::Fenced { pruned } = end else { panic!("not refused: {end:?}") };
        assert!(pruned < 20, "the run went on after the takeover");
        assert_eq!(remaining(&*store).await, 20 - pruned, "the refused batch deleted nothing");
        assert_eq!(metrics.fenced_writes_refused.with_label_values(&[JOB]).get(), 1);
    }
}
