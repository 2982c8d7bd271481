//! Miroir's own task registry: the task sequence, task records and their listing.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::serde_nanos;
use crate::{Fence, StoreError, StoreResult};

/// The status of a Miroir task, named as Meilisearch names task statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    /// No node has started the work yet.
    Enqueued,
    /// At least one node started and not every node finished.
    Processing,
    /// Every node task succeeded.
    Succeeded,
    /// At least one node task failed.
    Failed,
    /// The task was canceled.
    Canceled,
}

impl TaskStatus {
    /// Every status, in Meilisearch's order.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Enqueued,
        TaskStatus::Processing,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Canceled,
    ];

    /// The name Meilisearch uses, e.g. `"succeeded"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Enqueued => "enqueued",
            TaskStatus::Processing => "processing",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Canceled => "canceled",
        }
    }

    /// Whether the task will not change any more (and may be pruned after the retention).
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Canceled)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown task status `{s}`")))
    }
}

/// A task about to be recorded; the store assigns its uid.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    /// The index the task acts on; `None` for tasks such as `indexSwap` or `taskDeletion`.
    pub index_uid: Option<String>,
    /// The Meilisearch task type, e.g. `"documentAdditionOrUpdate"`.
    pub kind: String,
    /// The status at creation, usually [`TaskStatus::Enqueued`].
    pub status: TaskStatus,
    /// When Miroir accepted the task.
    pub enqueued_at: OffsetDateTime,
    /// Meilisearch's `details` object, if any.
    pub details: Option<serde_json::Value>,
    /// The node tasks the operation created: node id → that node's task uid.
    pub node_tasks: BTreeMap<String, u64>,
}

/// A recorded Miroir task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The Miroir task uid, unique and increasing in creation order.
    pub uid: u64,
    /// The index the task acts on, if any.
    pub index_uid: Option<String>,
    /// The Meilisearch task type.
    pub kind: String,
    /// The derived status.
    pub status: TaskStatus,
    /// When Miroir accepted the task.
    #[serde(with = "serde_nanos")]
    pub enqueued_at: OffsetDateTime,
    /// When the first node started it.
    #[serde(with = "serde_nanos::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When the last node finished it.
    #[serde(with = "serde_nanos::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Meilisearch's `details` object.
    pub details: Option<serde_json::Value>,
    /// The error, in Meilisearch's error shape, of a failed task.
    pub error: Option<serde_json::Value>,
    /// Node id → node task uid.
    pub node_tasks: BTreeMap<String, u64>,
}

impl TaskRecord {
    /// The record `new` becomes once the store gives it `uid`.
    pub fn from_new(uid: u64, new: NewTask) -> Self {
        TaskRecord {
            uid,
            index_uid: new.index_uid,
            kind: new.kind,
            status: new.status,
            enqueued_at: new.enqueued_at,
            started_at: None,
            finished_at: None,
            details: new.details,
            error: None,
            node_tasks: new.node_tasks,
        }
    }
}

/// Which tasks to list, with Meilisearch's `GET /tasks` semantics.
///
/// Empty lists mean "no filter". Date bounds are exclusive, as Meilisearch's `beforeXAt`/`afterXAt`
/// are. Results come newest first (descending uid), starting at `from` (inclusive) if given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskFilter {
    /// Only these uids.
    pub uids: Vec<u64>,
    /// Only these statuses.
    pub statuses: Vec<TaskStatus>,
    /// Only these task types.
    pub kinds: Vec<String>,
    /// Only tasks on these indexes.
    pub index_uids: Vec<String>,
    /// Enqueued strictly before.
    pub before_enqueued_at: Option<OffsetDateTime>,
    /// Enqueued strictly after.
    pub after_enqueued_at: Option<OffsetDateTime>,
    /// Started strictly before.
    pub before_started_at: Option<OffsetDateTime>,
    /// Started strictly after.
    pub after_started_at: Option<OffsetDateTime>,
    /// Finished strictly before.
    pub before_finished_at: Option<OffsetDateTime>,
    /// Finished strictly after.
    pub after_finished_at: Option<OffsetDateTime>,
    /// The largest uid to return (Meilisearch's `from`).
    pub from: Option<u64>,
    /// At most this many results (Meilisearch's default is 20).
    pub limit: usize,
}

impl TaskFilter {
    /// Whether `task` passes every filter except `from` and `limit`.
    pub fn matches(&self, task: &TaskRecord) -> bool {
        fn before(bound: Option<OffsetDateTime>, date: Option<OffsetDateTime>) -> bool {
            bound.is_none_or(|b| date.is_some_and(|d| d < b))
        }
        fn after(bound: Option<OffsetDateTime>, date: Option<OffsetDateTime>) -> bool {
            bound.is_none_or(|b| date.is_some_and(|d| d > b))
        }
        (self.uids.is_empty() || self.uids.contains(&task.uid))
            && (self.statuses.is_empty() || self.statuses.contains(&task.status))
            && (self.kinds.is_empty() || self.kinds.contains(&task.kind))
            && (self.index_uids.is_empty()
                || task.index_uid.as_ref().is_some_and(|i| self.index_uids.contains(i)))
            && before(self.before_enqueued_at, Some(task.enqueued_at))
            && after(self.after_enqueued_at, Some(task.enqueued_at))
            && before(self.before_started_at, task.started_at)
            && after(self.after_started_at, task.started_at)
            && before(self.before_finished_at, task.finished_at)
            && after(self.after_finished_at, task.finished_at)
    }
}

/// One page of [`TaskLog::list_tasks`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPage {
    /// The matching tasks, newest first.
    pub results: Vec<TaskRecord>,
    /// How many tasks match the filters, ignoring `from` and `limit`.
    pub total: u64,
    /// The uid to pass as `from` for the next page, if there is one.
    pub next: Option<u64>,
}

/// What [`TaskLog::create_task_with_change`] appends with a task: given the new record, the
/// index uid and the serialized event.
pub type ChangeEntry = std::sync::Arc<dyn Fn(&TaskRecord) -> (String, Vec<u8>) + Send + Sync>;

/// The task sequence and task records.
#[async_trait]
pub trait TaskLog: Send + Sync {
    /// Records `task` under a new uid, strictly larger than every uid handed out before by this
    /// store (even uids of pruned tasks), and returns the record.
    ///
    /// `NotFound` when the store has lost its task sequence since it was opened (a Redis that
    /// was flushed or replaced): nothing is recorded, since the next uid could be one a client
    /// already holds. The caller restores the sequence with [`TaskLog::raise_task_sequence`]
    /// and tries again.
    async fn create_task(&self, task: NewTask) -> StoreResult<TaskRecord>;

    /// [`TaskLog::create_task`], and in the same transaction the change event `change` makes
    /// of the record appended to the index's change log (see [`crate::CdcLog`]): the record and
    /// the event's position. A backend that cannot do both at once records the task only and
    /// answers no position (the default); the caller then appends the event on its own.
    async fn create_task_with_change(
        &self,
        task: NewTask,
        change: ChangeEntry,
    ) -> StoreResult<(TaskRecord, Option<u64>)> {
        let _ = change;
        Ok((self.create_task(task).await?, None))
    }

    /// The last uid handed out (0 on a new store), or `None` when the store has lost its
    /// task sequence since it was opened.
    async fn task_sequence(&self) -> StoreResult<Option<u64>>;

    /// Makes the sequence at least `at_least` (creating it when it was lost) and returns it:
    /// the next task gets a larger uid. Never lowers the sequence.
    async fn raise_task_sequence(&self, at_least: u64) -> StoreResult<u64>;

    /// The task with `uid`, if it exists.
    async fn get_task(&self, uid: u64) -> StoreResult<Option<TaskRecord>>;

    /// Replaces the stored task with the same uid. `NotFound` if there is none.
    async fn update_task(&self, task: &TaskRecord) -> StoreResult<()>;

    /// The tasks that pass `filter`, newest first, with the total and the next page's `from`.
    async fn list_tasks(&self, filter: &TaskFilter) -> StoreResult<TaskPage>;

    /// One batch of task pruning, leader-only work: deletes at most `limit` terminal tasks that
    /// finished before `older_than`, earliest finish first, and returns how many it deleted.
    ///
    /// The fence is checked atomically with the delete: when `fence` is not the latest token
    /// issued for its lease (a newer leader exists), nothing is deleted and the answer is
    /// `Conflict`. A batch that deleted fewer than `limit` tasks left nothing old to prune.
    async fn prune_tasks(
        &self,
        older_than: OffsetDateTime,
        limit: usize,
        fence: &Fence,
    ) -> StoreResult<u64>;

    /// Deletes the finished (succeeded, failed or canceled) tasks among `uids`, as
    /// `DELETE /tasks` does; unfinished ones are kept. Returns how many were deleted.
    async fn delete_tasks(&self, uids: &[u64]) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().expect("parse"), status);
        }
        assert!("done".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn records_serialize_dates_as_nanoseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789)
            .expect("valid date");
        let new = NewTask {
            index_uid: None,
            kind: "indexSwap".into(),
            status: TaskStatus::Enqueued,
            enqueued_at: at,
            details: None,
            node_tasks: BTreeMap::new(),
        };
        let record = TaskRecord::from_new(3, new);
        let json = serde_json::to_value(&record).expect("serialize");
        assert_eq!(json["enqueued_at"], 1_700_000_000_123_456_789i64);
        assert_eq!(serde_json::from_value::<TaskRecord>(json).expect("deserialize"), record);
    }
}
