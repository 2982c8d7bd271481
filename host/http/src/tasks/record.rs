//! Recording Miroir tasks.
//!
//! A task's stored `details` hold what Miroir knows when it accepts the work (what one node
//! would show while the task is enqueued), plus private hints under `_miroir` that say how to
//! compute the final details from the node tasks. Hints never reach a client: they are dropped
//! when the details are rendered and when the task is persisted in a terminal state.

use std::collections::BTreeMap;

use miroir_store::{NewTask, TaskRecord, TaskStatus};
use miroir_types::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::HttpResult;
use crate::AppState;

/// How final details are computed from node tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Hints {
    /// Start from the first node's details (then apply `keep` and `sum`).
    pub node_details: bool,
    /// Stored fields that override the node's (e.g. `providedIds`, counted by Miroir).
    pub keep: Vec<String>,
    /// Counters summed over one replica group and divided by RF (each document counted once).
    pub sum: Vec<String>,
    /// `indexedDocuments` is `receivedDocuments` on success, 0 otherwise.
    pub indexed_from_received: bool,
    /// A settings task: strip bookkeeping from the node's details.
    pub settings: bool,
    /// For settings tasks: the fields the client sent (other node fields are bookkeeping).
    pub client_keys: Vec<String>,
    /// For settings tasks: client values shown instead of their node translation.
    pub overrides: serde_json::Map<String, Value>,
    /// Node id → the `enqueuedAt` the node answered when it accepted its task: how a node task
    /// is recognised later (a node whose task history was reset reuses task uids).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub node_enqueued_at: BTreeMap<String, String>,
}

/// The node tasks a Miroir task maps to, with the `enqueuedAt` each node answered when known.
#[derive(Debug, Clone, Default)]
pub struct NodeTasks {
    /// Node id → node task uid.
    pub uids: BTreeMap<String, u64>,
    /// Node id → the node's `enqueuedAt` for that task.
    pub enqueued_at: BTreeMap<String, String>,
}

impl From<BTreeMap<String, u64>> for NodeTasks {
    fn from(uids: BTreeMap<String, u64>) -> Self {
        NodeTasks { uids, enqueued_at: BTreeMap::new() }
    }
}

impl From<crate::fanout::Enqueued> for NodeTasks {
    fn from(enqueued: crate::fanout::Enqueued) -> Self {
        NodeTasks { uids: enqueued.node_tasks, enqueued_at: enqueued.enqueued_at }
    }
}

/// The key under which hints are stored in `details`.
pub const HINTS_KEY: &str = "_miroir";

fn with_hints(details: Value, hints: &Hints) -> Value {
    let mut details = match details {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let Ok(hints) = serde_json::to_value(hints) {
        details.insert(HINTS_KEY.to_owned(), hints);
    }
    Value::Object(details)
}

/// Records a task that maps to `node_tasks` (pass the fan-out's [`crate::fanout::Enqueued`], so
/// each node task can be recognised later by its enqueue date).
pub async fn enqueue(
    state: &AppState,
    index_uid: Option<&str>,
    kind: &str,
    details: Value,
    hints: &Hints,
    node_tasks: impl Into<NodeTasks>,
) -> HttpResult<TaskRecord> {
    let (record, _) =
        enqueue_with_change(state, index_uid, kind, details, hints, node_tasks, None).await?;
    Ok(record)
}

/// [`enqueue`], appending `change` (a client write's change event, see
/// [`crate::write_hooks::entry`]) to the change log in the same store transaction when the
/// store can: the record and the event's position when it was appended.
pub async fn enqueue_with_change(
    state: &AppState,
    index_uid: Option<&str>,
    kind: &str,
    details: Value,
    hints: &Hints,
    node_tasks: impl Into<NodeTasks>,
    change: Option<miroir_store::ChangeEntry>,
) -> HttpResult<(TaskRecord, Option<u64>)> {
    let node_tasks = node_tasks.into();
    let hints = Hints { node_enqueued_at: node_tasks.enqueued_at, ..hints.clone() };
    let task = NewTask {
        index_uid: index_uid.map(str::to_owned),
        kind: kind.to_owned(),
        status: TaskStatus::Enqueued,
        enqueued_at: OffsetDateTime::now_utc(),
        details: Some(with_hints(details, &hints)),
        node_tasks: node_tasks.uids,
    };
    let (mut record, position) = state.catalog().create_task_with_change(task, change).await?;
    if record.node_tasks.is_empty() {
        // Nothing for the nodes to do (e.g. deleting no ids): done at once, as one node would be.
        record = finish_without_nodes(state, record, None).await?;
    }
    Ok((record, position))
}

/// Records a task that failed before any node work, as Meilisearch reports errors it finds
/// while processing (202 answer, `failed` task).
pub async fn failed_task(
    state: &AppState,
    index_uid: Option<&str>,
    kind: &str,
    details: Value,
    error: ApiError,
) -> HttpResult<TaskRecord> {
    let task = NewTask {
        index_uid: index_uid.map(str::to_owned),
        kind: kind.to_owned(),
        status: TaskStatus::Enqueued,
        enqueued_at: OffsetDateTime::now_utc(),
        details: Some(details),
        node_tasks: BTreeMap::new(),
    };
    let record = state.catalog().create_task(task).await?;
    finish_without_nodes(state, record, Some(error)).await
}

async fn finish_without_nodes(
    state: &AppState,
    mut record: TaskRecord,
    error: Option<ApiError>,
) -> HttpResult<TaskRecord> {
    let now = OffsetDateTime::now_utc();
    record.started_at = Some(now);
    record.finished_at = Some(now);
    record.status = if error.is_some() { TaskStatus::Failed } else { TaskStatus::Succeeded };
    record.error = error.map(|e| e.to_json());
    if let Some(details) = record.details.take() {
        record.details =
            Some(crate::tasks::derive::final_details(state, details, &[], record.status));
    }
    state.store().update_task(&record).await?;
    crate::webhooks::task_finished(state, &record);
    Ok(record)
}
