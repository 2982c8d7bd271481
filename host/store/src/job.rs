//! The background job queue: at-least-once work items claimed under a lease.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Held by a worker until its lease ends.
    Claimed,
    /// Given up on; kept for inspection.
    Failed,
}

impl JobState {
    /// The stored name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Claimed => "claimed",
            JobState::Failed => "failed",
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job id, increasing in enqueue order.
    pub id: u64,
    /// What to do, e.g. `"repair-shard"`.
    pub kind: String,
    /// The job's arguments.
    pub payload: serde_json::Value,
    /// Where the job is.
    pub state: JobState,
    /// How many times a worker claimed it.
    pub attempts: u32,
    /// The worker holding the claim, while claimed.
    pub worker: Option<String>,
    /// The error of the latest failure, if any.
    pub last_error: Option<String>,
}

/// How many jobs are in each state (for `miroir_background_queue_depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobDepth {
    /// Waiting for a worker (expired claims not yet re-queued are counted as claimed).
    pub queued: u64,
    /// Held by a worker.
    pub claimed: u64,
    /// Given up on.
    pub failed: u64,
}

/// The job queue.
///
/// Jobs are claimed oldest first. A claim lasts `lease`; a worker extends it with
/// [`extend_job`](JobQueue::extend_job) while it works. A claim whose lease ended is taken back:
/// `claim_job` re-queues expired claims before it picks, and
/// [`requeue_expired_jobs`](JobQueue::requeue_expired_jobs) does it on demand. Operations by a
/// worker that no longer holds the claim fail with `Conflict`.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Adds a job; returns its id.
    async fn enqueue_job(&self, kind: &str, payload: &serde_json::Value) -> StoreResult<u64>;

    /// Claims the oldest queued job for `worker` for `lease`, or `None` when the queue is empty.
    /// Never hands one job to two workers at once.
    async fn claim_job(&self, worker: &str, lease: Duration) -> StoreResult<Option<Job>>;

    /// Extends `worker`'s claim on job `id` to `lease` from now. `Conflict` unless `worker`
    /// holds the claim.
    async fn extend_job(&self, id: u64, worker: &str, lease: Duration) -> StoreResult<()>;

    /// Deletes job `id` as done. `Conflict` unless `worker` holds the claim.
    async fn complete_job(&self, id: u64, worker: &str) -> StoreResult<()>;

    /// Records `error` for job `id` and re-queues it (`retry`) or marks it failed.
    /// `Conflict` unless `worker` holds the claim.
    async fn fail_job(&self, id: u64, worker: &str, error: &str, retry: bool) -> StoreResult<()>;

    /// Re-queues every claim whose lease ended; returns how many.
    async fn requeue_expired_jobs(&self) -> StoreResult<u64>;

    /// Job `id`, in any state.
    async fn get_job(&self, id: u64) -> StoreResult<Option<Job>>;

    /// How many jobs are queued, claimed and failed.
    async fn job_depth(&self) -> StoreResult<JobDepth>;
}
