//! Task routes: list, get one, cancel and delete.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{accepted, auth, ok_json, query_pairs};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::keys::Access;
use crate::state::Node;
use crate::tasks::{list_tasks, Task, TaskFilter, TaskKind, TaskPage};

fn visible(access: &Access, task: &Task) -> bool {
    task.index_uid.as_deref().is_none_or(|uid| access.allows_index(uid))
}

pub async fn list(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "tasks.get", None)?;
    let params = query_pairs(q.as_deref());
    let filter = TaskFilter::parse(&params, &["limit", "from", "reverse"])?;
    let page = TaskPage::parse(&params)?;
    let db = node.db();
    let tasks = db.tasks.values().filter(|t| visible(&access, t));
    let tasks: Vec<&Task> = tasks.collect();
    Ok(ok_json(list_tasks(tasks.into_iter(), &filter, &page)))
}

pub async fn get_one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "tasks.get", None)?;
    let not_found = || ApiError::new("task_not_found", format!("Task `{uid}` not found."));
    let task_uid: u32 = uid.parse().map_err(|_| {
        ApiError::new("invalid_task_uids", format!("Invalid value in parameter `taskUid`: could not parse `{uid}` as a positive integer"))
    })?;
    let db = node.db();
    let task = db.tasks.get(&task_uid).filter(|t| visible(&access, t)).ok_or_else(not_found)?;
    Ok(ok_json(task.to_json()))
}

/// Filters of cancel and delete: at least one is required.
fn required_filter(raw: Option<&str>, verb: &str) -> Result<(TaskFilter, String), ApiError> {
    let params = query_pairs(raw);
    let filter = TaskFilter::parse(&params, &[])?;
    if !filter.any {
        return Err(ApiError::new("missing_task_filters", format!("Query parameters to filter the tasks to {verb} are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`.")));
    }
    Ok((filter, format!("?{}", raw.unwrap_or_default())))
}

pub async fn cancel(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "tasks.cancel", None)?;
    let (filter, query) = required_filter(q.as_deref(), "cancel")?;
    let uids: Vec<u32> = {
        let db = node.db();
        db.tasks
            .values()
            .filter(|t| visible(&access, t) && filter.matches(t) && !t.status.is_terminal())
            .map(|t| t.uid)
            .collect()
    };
    Ok(accepted(&node.enqueue(None, TaskKind::TaskCancelation { query, uids })))
}

pub async fn delete(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "tasks.delete", None)?;
    let (filter, query) = required_filter(q.as_deref(), "delete")?;
    let uids: Vec<u32> = {
        let db = node.db();
        db.tasks
            .values()
            .filter(|t| visible(&access, t) && filter.matches(t))
            .map(|t| t.uid)
            .collect()
    };
    Ok(accepted(&node.enqueue(None, TaskKind::TaskDeletion { query, uids })))
}

/// `POST /dumps`: a `dumpCreation` task (a development node writes no file).
pub async fn create_dump(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth(&node, &headers, "dumps.create", None)?;
    Ok(accepted(&node.enqueue(None, TaskKind::DumpCreation)))
}

/// `POST /snapshots`: a `snapshotCreation` task (a development node writes no file).
pub async fn create_snapshot(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth(&node, &headers, "snapshots.create", None)?;
    Ok(accepted(&node.enqueue(None, TaskKind::SnapshotCreation)))
}

/// A development node processes one task at a time: every started task is its own batch.
fn batch_json(task: &Task) -> Value {
    let view = task.to_json();
    let one = |key: &Value| {
        let mut map = Map::new();
        if let Some(key) = key.as_str() {
            map.insert(key.to_owned(), json!(1));
        }
        Value::Object(map)
    };
    json!({
        "uid": task.uid,
        "progress": null,
        "details": view["details"],
        "stats": {
            "totalNbTasks": 1,
            "status": one(&view["status"]),
            "types": one(&view["type"]),
            "indexUids": one(&view["indexUid"]),
        },
        "duration": view["duration"],
        "startedAt": view["startedAt"],
        "finishedAt": view["finishedAt"],
        "batchStrategy": "one task per batch",
    })
}

/// `GET /batches`: the task filters and paging, on started tasks.
pub async fn list_batches(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "tasks.get", None)?;
    let params = query_pairs(q.as_deref());
    let filter = TaskFilter::parse(&params, &["limit", "from", "reverse"])?;
    let page = TaskPage::parse(&params)?;
    let db = node.db();
    let started: Vec<&Task> =
        db.tasks.values().filter(|t| visible(&access, t) && t.started_at.is_some()).collect();
    let mut answer = list_tasks(started.into_iter(), &filter, &page);
    if let Some(results) = answer["results"].as_array_mut() {
        for result in results.iter_mut() {
            let uid = result["uid"].as_u64().unwrap_or_default() as u32;
            if let Some(task) = db.tasks.get(&uid) {
                *result = batch_json(task);
            }
        }
    }
    Ok(ok_json(answer))
}

/// `GET /batches/{uid}`.
pub async fn get_batch(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "tasks.get", None)?;
    let batch_uid: u32 = uid.parse().map_err(|_| {
        ApiError::new("invalid_batch_uids", format!("Invalid value in parameter `batchUid`: could not parse `{uid}` as a positive integer"))
    })?;
    let db = node.db();
    let task = db
        .tasks
        .get(&batch_uid)
        .filter(|t| visible(&access, t) && t.started_at.is_some())
        .ok_or_else(|| {
        ApiError::new("batch_not_found", format!("Batch `{batch_uid}` not found."))
    })?;
    Ok(ok_json(batch_json(task)))
}

/// `POST /indexes/{uid}/compact`: an `indexCompaction` task.
pub async fn compact_index(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    super::check_uid(&uid)?;
    auth(&node, &headers, "indexes.compact", Some(&uid))?;
    node.db().index(&uid)?;
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::IndexCompaction)))
}
