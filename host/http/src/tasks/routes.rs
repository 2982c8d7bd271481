//! `GET /tasks`, `GET /tasks/{uid}`, `POST /tasks/cancel`, `DELETE /tasks`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt as _;
use miroir_store::{TaskFilter, TaskRecord, TaskStatus};
use miroir_types::{ApiError, ErrorCode};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeCall, NodeStep};
use crate::tasks::query::{self as task_query, TaskQuery};
use crate::tasks::{enqueue, refresh, render, summary, Hints};
use crate::AppState;
use axum::http::Method;

/// `GET /tasks/{uid}`.
pub async fn get_task(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    let Ok(number) = uid.parse::<u64>() else {
        return Err(HttpError::api(
            ErrorCode::InvalidTaskUids,
            format!("Invalid value in parameter `taskUid`: could not parse `{uid}` as a positive integer"),
        ));
    };
    let record =
        state.store().get_task(number).await?.ok_or_else(|| ApiError::task_not_found(number))?;
    let record = refresh(&state, record).await?;
    Ok(Json(rendered(&state, &record).await?).into_response())
}

use crate::task_metadata::NAMESPACE;

fn canceled_by_key(uid: u64) -> String {
    format!("task/{uid}/canceled-by")
}

/// A task as Meilisearch shows it, with `canceledBy` for a task a cancelation stopped.
pub(crate) async fn rendered(state: &AppState, record: &TaskRecord) -> HttpResult<Value> {
    let mut task = render(record);
    if let Some(by) = canceled_by(state, record).await? {
        task["canceledBy"] = Value::from(by);
    }
    if let Some(metadata) = crate::task_metadata::of_task(state, record.uid).await? {
        task["customMetadata"] = Value::from(metadata);
    }
    Ok(task)
}

/// Refreshes every unfinished task, so status filters see derived statuses.
pub(crate) async fn refresh_unfinished(state: &AppState) -> HttpResult<()> {
    let filter = TaskFilter {
        statuses: vec![TaskStatus::Enqueued, TaskStatus::Processing],
        limit: 10_000,
        ..TaskFilter::default()
    };
    let records = state.store().list_tasks(&filter).await?.results;
    let refreshed: Vec<HttpResult<_>> = futures_util::stream::iter(records)
        .map(|record| refresh(state, record))
        .buffer_unordered(16)
        .collect()
        .await;
    refreshed.into_iter().try_for_each(|r| r.map(|_| ()))
}

/// Who canceled a canceled task (kept apart from its record, see [`act_on_tasks`]).
async fn canceled_by(state: &AppState, record: &TaskRecord) -> HttpResult<Option<u64>> {
    if record.status != TaskStatus::Canceled {
        return Ok(None);
    }
    let by = state.store().plugin_get(NAMESPACE, &canceled_by_key(record.uid)).await?;
    Ok(by.and_then(|b| String::from_utf8(b).ok()).and_then(|b| b.parse::<u64>().ok()))
}

/// Every task the query matches, filters of Miroir's own included, newest first.
pub(crate) async fn all_matching(
    state: &AppState,
    query: &TaskQuery,
) -> HttpResult<Vec<TaskRecord>> {
    let filter = TaskFilter { from: None, ..query.filter.clone() };
    let mut kept = Vec::new();
    for task in matching(state, &filter).await? {
        if !query.matches_batch(&task) {
            continue;
        }
        if let Some(by) = &query.canceled_by {
            if !canceled_by(state, &task).await?.is_some_and(|uid| by.contains(&uid)) {
                continue;
            }
        }
        kept.push(task);
    }
    Ok(kept)
}

/// `GET /tasks`.
pub async fn list_tasks(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    let query = task_query::parse(query.as_deref(), true)?;
    let filter = &query.filter;
    refresh_unfinished(&state).await?;
    let (page, total, next) = if query.store_only() {
        let page = state.store().list_tasks(filter).await?;
        (page.results, page.total, page.next)
    } else {
        // Filters the store does not know, or oldest first: the page is cut here.
        let mut all = all_matching(&state, &query).await?;
        if query.reverse {
            all.reverse();
        }
        let total = all.len();
        let start = all
            .iter()
            .position(|t| match filter.from {
                None => true,
                Some(from) if query.reverse => t.uid >= from,
                Some(from) => t.uid <= from,
            })
            .unwrap_or(total);
        let next = all.get(start + filter.limit).map(|t| t.uid);
        let page: Vec<TaskRecord> = all.into_iter().skip(start).take(filter.limit).collect();
        (page, total as u64, next)
    };
    let mut results: Vec<Value> = Vec::with_capacity(page.len());
    for record in &page {
        results.push(rendered(&state, record).await?);
    }
    Ok(Json(json!({
        "results": results,
        "total": total,
        "limit": filter.limit,
        "from": page.first().map(|t| t.uid),
        "next": next,
    }))
    .into_response())
}

async fn matching(state: &AppState, filter: &TaskFilter) -> HttpResult<Vec<TaskRecord>> {
    let mut all = Vec::new();
    let mut page_filter = TaskFilter { limit: 1000, ..filter.clone() };
    loop {
        let page = state.store().list_tasks(&page_filter).await?;
        all.extend(page.results);
        match page.next {
            Some(next) => page_filter.from = Some(next),
            None => return Ok(all),
        }
    }
}

/// `POST /tasks/cancel` and `DELETE /tasks`: the node tasks mapped by matching Miroir tasks are
/// canceled or deleted on their nodes, with one node request per node.
async fn act_on_tasks(
    state: &AppState,
    caller: &Caller,
    query: Option<String>,
    cancel: bool,
) -> HttpResult<Response> {
    let parsed = task_query::parse(query.as_deref(), false)?;
    if !parsed.any {
        return Err(HttpError::api(
            ErrorCode::MissingTaskFilters,
            format!(
                "Query parameters to filter the tasks to {} are missing. Available query \
                 parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, \
                 `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, \
                 `beforeFinishedAt`, `afterFinishedAt`.",
                if cancel { "cancel" } else { "delete" }
            ),
        ));
    }
    refresh_unfinished(state).await?;
    let tasks = all_matching(state, &parsed).await?;
    let mut per_node: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for task in &tasks {
        for (node, uid) in &task.node_tasks {
            per_node.entry(node.clone()).or_default().insert(*uid);
        }
    }
    let (method, path, kind) = if cancel {
        (Method::POST, "/tasks/cancel", "taskCancelation")
    } else {
        (Method::DELETE, "/tasks", "taskDeletion")
    };
    let calls = per_node
        .into_iter()
        .filter_map(|(node, uids)| {
            let uids: Vec<String> = uids.iter().map(ToString::to_string).collect();
            let node = miroir_types::NodeId::new(node).ok()?;
            let step =
                NodeStep::new(method.clone(), format!("{path}?uids={}", uids.join(",")), None);
            Some(NodeCall { node, steps: vec![step] })
        })
        .collect();
    let outcomes = fanout::run(state, caller.node_auth(), calls).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let original = format!("?{}", query.unwrap_or_default());
    let counter = if cancel { "canceledTasks" } else { "deletedTasks" };
    let details = json!({
        "matchedTasks": tasks.len(),
        counter: Value::Null,
        "originalFilter": original,
    });
    let hints = Hints {
        node_details: true,
        keep: vec!["matchedTasks".into(), "originalFilter".into()],
        ..Hints::default()
    };
    let record = enqueue(state, None, kind, details, &hints, enqueued).await?;
    if cancel {
        // Kept apart from the task records so a concurrent refresh of a task cannot lose it.
        let by = record.uid.to_string();
        for task in tasks.iter().filter(|t| !t.status.is_terminal()) {
            state.store().plugin_put(NAMESPACE, &canceled_by_key(task.uid), by.as_bytes()).await?;
        }
    } else {
        // Miroir's own records of the finished matching tasks go too, as on one node.
        let finished: Vec<u64> =
            tasks.iter().filter(|t| t.status.is_terminal()).map(|t| t.uid).collect();
        state.store().delete_tasks(&finished).await?;
        for uid in &finished {
            crate::task_metadata::forget(state, *uid).await?;
            state.store().plugin_delete(NAMESPACE, &canceled_by_key(*uid)).await?;
        }
    }
    Ok((StatusCode::ACCEPTED, Json(summary(&record))).into_response())
}

/// `POST /tasks/cancel`.
pub async fn cancel_tasks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    act_on_tasks(&state, &caller, query, true).await
}

/// `DELETE /tasks`: the finished matching tasks are deleted, on the nodes and in Miroir.
pub async fn delete_tasks(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    act_on_tasks(&state, &caller, query, false).await
}
