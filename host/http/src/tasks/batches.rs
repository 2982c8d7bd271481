//! `GET /batches` and `GET /batches/{uid}`: Miroir's own view of its tasks, where every task is
//! one batch (uid = the task's uid) from the moment it starts. The nodes' batches are theirs and
//! are not shown.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use miroir_store::{TaskRecord, TaskStatus};
use miroir_types::ErrorCode;
use serde_json::{json, Value};

use crate::error::{HttpError, HttpResult};
use crate::tasks::query::{self as task_query};
use crate::tasks::routes::{all_matching, refresh_unfinished};
use crate::tasks::{refresh, render};
use crate::AppState;

/// The batch that task `record` is (it must have started).
fn batch(record: &TaskRecord) -> Value {
    let task = render(record);
    let one = |key: &Value| {
        let mut map = serde_json::Map::new();
        if let Some(key) = key.as_str() {
            map.insert(key.to_owned(), Value::from(1));
        }
        Value::Object(map)
    };
    let progress = if record.status == TaskStatus::Processing {
        json!({"steps": [], "percentage": 0.0})
    } else {
        Value::Null
    };
    json!({
        "uid": record.uid,
        "progress": progress,
        "details": task["details"],
        "stats": {
            "totalNbTasks": 1,
            "status": one(&task["status"]),
            "types": one(&task["type"]),
            "indexUids": one(&task["indexUid"]),
        },
        "duration": task["duration"],
        "startedAt": task["startedAt"],
        "finishedAt": task["finishedAt"],
        "batchStrategy": "each Miroir task is its own batch",
    })
}

/// `GET /batches`: the task filters, on started tasks.
pub async fn list_batches(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    let mut query = task_query::parse(query.as_deref(), true)?;
    refresh_unfinished(&state).await?;
    let limit = query.filter.limit;
    let from = query.filter.from;
    query.filter.limit = usize::MAX;
    let mut all: Vec<TaskRecord> = all_matching(&state, &query)
        .await?
        .into_iter()
        .filter(|t| t.started_at.is_some())
        .collect();
    if query.reverse {
        all.reverse();
    }
    let total = all.len();
    let start = all
        .iter()
        .position(|t| match from {
            None => true,
            Some(from) if query.reverse => t.uid >= from,
            Some(from) => t.uid <= from,
        })
        .unwrap_or(total);
    let next = all.get(start + limit).map(|t| t.uid);
    let page: Vec<Value> = all.iter().skip(start).take(limit).map(batch).collect();
    Ok(Json(json!({
        "results": page,
        "total": total,
        "limit": limit,
        "from": page.first().map(|b| b["uid"].clone()),
        "next": next,
    }))
    .into_response())
}

/// `GET /batches/{uid}`.
pub async fn get_batch(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    let Ok(number) = uid.parse::<u64>() else {
        return Err(HttpError::api(
            ErrorCode::InvalidBatchUids,
            format!(
                "Invalid value in parameter `batchUid`: could not parse `{uid}` as a positive integer"
            ),
        ));
    };
    let not_found =
        || HttpError::api(ErrorCode::BatchNotFound, format!("Batch `{number}` not found."));
    let record = state.store().get_task(number).await?.ok_or_else(not_found)?;
    let record = refresh(&state, record).await?;
    if record.started_at.is_none() {
        return Err(not_found());
    }
    Ok(Json(batch(&record)).into_response())
}
