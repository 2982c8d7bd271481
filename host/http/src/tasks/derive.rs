//! Deriving a Miroir task's state from its node tasks.
//!
//! `enqueued` until a node starts; `processing` while any node task is not finished; once all
//! are finished: `failed` with the first node error (in node id order) if any failed, else
//! `canceled` if any was canceled, else `succeeded`. A document write a node lost (it restarted
//! empty) but every other owner applied counts as applied there: a repair rebuilds the node's
//! copy from those owners. The final state is persisted once, so later reads never ask the
//! nodes again.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use miroir_cluster::NodeAuth;
use miroir_store::{TaskRecord, TaskStatus};
use miroir_types::{ApiError, ErrorCode, NodeId};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::bookkeeping::SHARD_FIELD;
use crate::error::HttpResult;
use crate::tasks::record::{Hints, HINTS_KEY};
use crate::tasks::view::date;
use crate::AppState;
use axum::http::Method;

/// One node's view of its task.
#[derive(Debug, Clone)]
pub struct NodeTask {
    node: NodeId,
    task: Value,
    /// The node no longer has the task (see [`lost`]).
    lost: bool,
}

impl NodeTask {
    fn status(&self) -> &str {
        self.task.get("status").and_then(Value::as_str).unwrap_or("enqueued")
    }

    fn date(&self, field: &str) -> Option<OffsetDateTime> {
        self.task
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    }
}

async fn fetch(state: &AppState, record: &TaskRecord) -> Vec<Option<NodeTask>> {
    let recorded = recorded_enqueue_dates(record);
    let calls = record.node_tasks.iter().map(|(node, uid)| {
        let recorded = recorded.get(node).copied();
        async move {
            let node = NodeId::new(node.as_str()).ok()?;
            let client = state.client(&node).ok()?;
            let response = client
                .send(Method::GET, &format!("/tasks/{uid}"), None, NodeAuth::NodeKey)
                .await
                .ok()?;
            if response.status == 404 {
                return Some(lost(node, *uid, "no longer exists there".to_owned()));
            }
            if !response.is_success() {
                return None;
            }
            let task = NodeTask { node, task: response.json(), lost: false };
            Some(match unrelated(record, recorded, &task) {
                Some(reason) => lost(task.node, *uid, reason),
                None => task,
            })
        }
    });
    join_all(calls).await
}

/// How far a node's clock may be from Miroir's, and a fan-out may last, when a task recorded
/// before node enqueue dates were kept is checked by its date alone.
const LEGACY_DATE_SLACK: time::Duration = time::Duration::minutes(10);

/// The `enqueuedAt` each node answered when it accepted its task, from the task's hints.
fn recorded_enqueue_dates(record: &TaskRecord) -> BTreeMap<String, Option<OffsetDateTime>> {
    let hints = record
        .details
        .as_ref()
        .and_then(|d| d.get(HINTS_KEY))
        .and_then(|h| serde_json::from_value::<Hints>(h.clone()).ok())
        .unwrap_or_default();
    hints
        .node_enqueued_at
        .into_iter()
        .map(|(node, at)| (node, OffsetDateTime::parse(&at, &Rfc3339).ok()))
        .collect()
}

/// Why `task` (what the node now has under the uid Miroir mapped) is not the task Miroir sent,
/// if it is not: another index or type, or another enqueue date. A node that restarted without
/// its data numbers its tasks from 0 again, so the uid alone proves nothing.
fn unrelated(
    record: &TaskRecord,
    recorded: Option<Option<OffsetDateTime>>,
    task: &NodeTask,
) -> Option<String> {
    let field = |name: &str| task.task.get(name).and_then(Value::as_str);
    let described = || {
        format!(
            "another task (index `{}`, type `{}`, enqueued at {})",
            field("indexUid").unwrap_or("none"),
            field("type").unwrap_or("unknown"),
            field("enqueuedAt").unwrap_or("an unknown date"),
        )
    };
    if let Some(index) = record.index_uid.as_deref() {
        if field("indexUid").is_some_and(|theirs| theirs != index) {
            return Some(described());
        }
    }
    if field("type").is_some_and(|theirs| theirs != record.kind) {
        return Some(described());
    }
    let enqueued = task.date("enqueuedAt")?;
    let matches = match recorded {
        Some(Some(at)) => enqueued == at,
        // Recorded without the node's date: it must be near Miroir's own enqueue date.
        Some(None) | None => {
            enqueued >= record.enqueued_at - LEGACY_DATE_SLACK
                && enqueued <= record.enqueued_at + LEGACY_DATE_SLACK
        }
    };
    (!matches).then(described)
}

/// A node task the node no longer has: settled as failed with `miroir_task_lost`.
fn lost(node: NodeId, uid: u64, reason: String) -> NodeTask {
    let error = ApiError::new(
        ErrorCode::MiroirTaskLost,
        format!(
            "Node `{node}` lost this task: its task {uid} {reason}. The node's task history was \
             reset (for example it restarted without its data), so what this task did there is \
             unknown. Send the request again."
        ),
    );
    let now = date(OffsetDateTime::now_utc());
    NodeTask {
        node,
        task: serde_json::json!({
            "status": "failed",
            "error": error.to_json(),
            "finishedAt": now,
        }),
        lost: true,
    }
}

/// The kinds of task whose effect on a node is only documents, which a repair copies back.
const DOCUMENT_WRITES: [&str; 3] =
    ["documentAdditionOrUpdate", "documentDeletion", "documentEdition"];

/// Leaves out the document writes a node lost that other owners applied: the node lost its
/// data with its task history (it restarted empty), so its copy of the index is rebuilt from
/// those owners by a repair, this write included. A lost write counts as applied when, for
/// every shard the node receives writes of, another owner that took this task succeeded.
async fn without_covered_losses<'a>(
    state: &AppState,
    record: &TaskRecord,
    known: Vec<&'a NodeTask>,
) -> Vec<&'a NodeTask> {
    if !known.iter().any(|t| t.lost) || !DOCUMENT_WRITES.contains(&record.kind.as_str()) {
        return known;
    }
    let meta = match record.index_uid.as_deref() {
        Some(uid) => state.catalog().get_index(uid).await.ok().flatten(),
        None => None,
    };
    let Some(meta) = meta else { return known };
    let assignment = state.assignment(meta.shard_count);
    let applied: Vec<NodeId> = known
        .iter()
        .filter(|t| !t.lost && t.status() == "succeeded")
        .map(|t| t.node.clone())
        .collect();
    let succeeded = |node: &NodeId| applied.contains(node);
    let covered = |lost: &NodeId| {
        (0..meta.shard_count).map(miroir_types::ShardId::new).all(|shard| {
            let owners: Vec<&NodeId> =
                assignment.write_targets(shard).flat_map(|(_, owners)| owners).collect();
            !owners.contains(&lost) || owners.iter().any(|n| *n != lost && succeeded(n))
        })
    };
    known
        .into_iter()
        .filter(|t| {
            let keep = !t.lost || !covered(&t.node);
            if !keep {
                tracing::info!(task = record.uid, node = %t.node,
                    "a node lost its task of a document write other owners applied; \
                     the node's copy is repaired from them");
            }
            keep
        })
        .collect()
}

/// Brings `record` up to date with its node tasks, persisting it when it changed.
pub async fn refresh(state: &AppState, record: TaskRecord) -> HttpResult<TaskRecord> {
    if record.status.is_terminal() || record.node_tasks.is_empty() {
        return Ok(record);
    }
    let fetched = fetch(state, &record).await;
    let known: Vec<&NodeTask> = fetched.iter().flatten().collect();
    let terminal = |t: &&NodeTask| matches!(t.status(), "succeeded" | "failed" | "canceled");
    let all_done = known.len() == fetched.len() && known.iter().all(terminal);
    let known = if all_done { without_covered_losses(state, &record, known).await } else { known };
    let mut updated = record.clone();
    updated.started_at = known.iter().filter_map(|t| t.date("startedAt")).min();
    if all_done {
        let first_failed = known.iter().find(|t| t.status() == "failed");
        updated.status = if first_failed.is_some() {
            TaskStatus::Failed
        } else if known.iter().any(|t| t.status() == "canceled") {
            TaskStatus::Canceled
        } else {
            TaskStatus::Succeeded
        };
        updated.error = first_failed.and_then(|t| t.task.get("error").cloned()).map(client_error);
        updated.finished_at = known.iter().filter_map(|t| t.date("finishedAt")).max();
        if updated.started_at.is_none() {
            updated.started_at = updated.finished_at;
        }
        let nodes: Vec<NodeTask> = known.into_iter().cloned().collect();
        let details = updated.details.take().unwrap_or(Value::Null);
        updated.details = Some(final_details(state, details, &nodes, updated.status));
        if updated.kind == "indexCreation" && updated.status == TaskStatus::Failed {
            roll_back_creation(state, &updated, &nodes).await?;
        }
    } else if known.iter().any(|t| t.status() != "enqueued") {
        updated.status = TaskStatus::Processing;
    }
    if updated != record {
        // Another refresh may have finished the task while this one asked the nodes: never
        // move a finished task back.
        if let Some(stored) = state.store().get_task(record.uid).await? {
            if stored.status.is_terminal() {
                return Ok(stored);
            }
        }
        state.store().update_task(&updated).await?;
        if updated.status.is_terminal() {
            crate::index_rename::task_finished(state, &updated).await?;
            crate::webhooks::task_finished(state, &updated);
        }
    }
    Ok(updated)
}

/// An index creation some node failed (e.g. it already held an index of that name) is undone
/// where it succeeded, and Miroir forgets the index: as on one node, a failed creation leaves no
/// new index behind. Nodes that failed keep whatever they had.
async fn roll_back_creation(
    state: &AppState,
    task: &TaskRecord,
    nodes: &[NodeTask],
) -> HttpResult<()> {
    let Some(uid) = task.index_uid.as_deref() else { return Ok(()) };
    // Only once: a concurrent refresh may already have finished (and rolled back) the task.
    if state.store().get_task(task.uid).await?.is_some_and(|t| t.status.is_terminal()) {
        return Ok(());
    }
    tracing::warn!(index = %uid, task = task.uid, "index creation failed on a node; rolling back");
    state.catalog().delete_index(uid).await?;
    state.read_catalog().forget(uid);
    let deletions = nodes.iter().filter(|t| t.status() == "succeeded").map(|t| async move {
        let client = state.client(&t.node).ok()?;
        let path = format!("/indexes/{uid}");
        client.send(Method::DELETE, &path, None, NodeAuth::NodeKey).await.ok()
    });
    join_all(deletions).await;
    Ok(())
}

/// The details a finished task shows, computed from the stored details, their hints and the
/// node tasks.
pub fn final_details(
    state: &AppState,
    stored: Value,
    nodes: &[NodeTask],
    status: TaskStatus,
) -> Value {
    let Value::Object(mut stored) = stored else { return stored };
    let hints: Hints =
        stored.remove(HINTS_KEY).and_then(|h| serde_json::from_value(h).ok()).unwrap_or_default();
    let mut details = stored.clone();
    if hints.node_details {
        if let Some(Value::Object(first)) = nodes.first().and_then(|t| t.task.get("details")) {
            details = first.clone();
            for key in &hints.keep {
                if let Some(value) = stored.get(key) {
                    details.insert(key.clone(), value.clone());
                }
            }
        }
    }
    for field in &hints.sum {
        details.insert(field.clone(), Value::from(counted_once(state, nodes, field)));
    }
    if hints.indexed_from_received {
        let received = details.get("receivedDocuments").cloned().unwrap_or(Value::from(0));
        let indexed = if status == TaskStatus::Succeeded { received } else { Value::from(0) };
        details.insert("indexedDocuments".to_owned(), indexed);
    }
    if hints.settings {
        crate::settings::translate::client_details(&mut details, &hints);
    }
    Value::Object(details)
}

/// A counter summed over the nodes of one replica group and divided by RF, so each document
/// counts once; the largest such count over groups (a group that missed a node undercounts).
fn counted_once(state: &AppState, nodes: &[NodeTask], field: &str) -> u64 {
    let mut per_group: BTreeMap<String, u64> = BTreeMap::new();
    for task in nodes {
        let value = task.task.get("details").and_then(|d| d.get(field)).and_then(Value::as_u64);
        let group = state.topology().group_of(&task.node).map(ToString::to_string);
        if let (Some(value), Some(group)) = (value, group) {
            *per_group.entry(group).or_default() += value;
        }
    }
    let rf = state.replication_factor().max(1) as u64;
    per_group.values().map(|sum| sum / rf).max().unwrap_or(0)
}

/// A node task's error as one node would word it: `_miroir_shard` out of the attribute lists its
/// message gives, and the bookkeeping field's disguise (see [`crate::reserved_names`]) back to
/// the name the client wrote.
fn client_error(mut error: Value) -> Value {
    if let Some(Value::String(message)) = error.get_mut("message") {
        let scrubbed = crate::bookkeeping::scrub_error_body(message.clone().into_bytes());
        let restored = crate::reserved_names::restored(&scrubbed);
        if let Ok(text) = String::from_utf8(restored) {
            *message = text;
        }
    }
    error
}

/// Removes `_miroir_shard` from a list of filterable attributes (string or object form).
pub fn strip_shard_field(list: &mut Value) {
    if let Value::Array(items) = list {
        items.retain(|item| match item {
            Value::String(s) => s != SHARD_FIELD,
            Value::Object(o) => !o
                .get("attributePatterns")
                .and_then(Value::as_array)
                .is_some_and(|p| p.len() == 1 && p[0] == SHARD_FIELD),
            _ => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_read_as_one_nodes() {
        let error = serde_json::json!({
            "message": "Index `b`: Attribute `_miroir_shar_.s1` is not filterable. Available \
                        filterable attribute patterns are: `_miroir_shard`, `genre`.",
            "code": "invalid_document_filter",
        });
        assert_eq!(
            client_error(error)["message"],
            "Index `b`: Attribute `_miroir_shard.s1` is not filterable. Available filterable \
             attribute patterns are: `genre`."
        );
        let other = serde_json::json!({"message": "no bookkeeping here", "code": "x"});
        assert_eq!(client_error(other.clone()), other);
    }
}
