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
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeCall, NodeStep};
use crate::tasks::{enqueue, refresh, render, summary, Hints};
use crate::AppState;
use axum::http::Method;

const TASK_TYPES: &[&str] = &[
    "documentAdditionOrUpdate",
    "documentEdition",
    "documentDeletion",
    "settingsUpdate",
    "indexCreation",
    "indexDeletion",
    "indexUpdate",
    "indexSwap",
    "taskCancelation",
    "taskDeletion",
    "dumpCreation",
    "snapshotCreation",
    "upgradeDatabase",
    "indexCompaction",
    "export",
];

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

fn list<T>(
    value: &str,
    code: ErrorCode,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> HttpResult<Vec<T>> {
    if value == "*" {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            parse(item).ok_or_else(|| {
                HttpError::api(
                    code,
                    format!("Invalid value in parameter `{what}`: `{item}` is not valid."),
                )
            })
        })
        .collect()
}

fn parse_date(value: &str, code: ErrorCode, name: &str) -> HttpResult<OffsetDateTime> {
    if let Ok(date) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(date);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format).map(|d| d.midnight().assume_utc()).map_err(|_| {
        HttpError::api(
            code,
            format!(
                "Invalid value in parameter `{name}`: `{value}` is an invalid date-time. It should \
                 follow the YYYY-MM-DD or RFC 3339 date-time format."
            ),
        )
    })
}

/// Parses Meilisearch's task filter query; `limit` defaults to 20.
pub fn parse_filter(query: Option<&str>) -> HttpResult<(TaskFilter, bool)> {
    let mut filter = TaskFilter { limit: 20, ..TaskFilter::default() };
    let mut any_filter = false;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.as_ref();
        match name.as_ref() {
            "uids" => {
                filter.uids = list(value, ErrorCode::InvalidTaskUids, |s| s.parse().ok(), "uids")?
            }
            "statuses" => {
                filter.statuses = list(
                    value,
                    ErrorCode::InvalidTaskStatuses,
                    |s| s.parse::<TaskStatus>().ok(),
                    "statuses",
                )?
            }
            "types" => {
                filter.kinds = list(
                    value,
                    ErrorCode::InvalidTaskTypes,
                    |s| TASK_TYPES.contains(&s).then(|| s.to_owned()),
                    "types",
                )?
            }
            "indexUids" => {
                filter.index_uids = list(
                    value,
                    ErrorCode::InvalidIndexUid,
                    |s| miroir_types::IndexUid::new(s).ok().map(|u| u.as_str().to_owned()),
                    "indexUids",
                )?
            }
            "limit" => {
                filter.limit = value.parse().map_err(|_| {
                    HttpError::api(ErrorCode::InvalidTaskLimit, format!("Invalid value in parameter `limit`: could not parse `{value}` as a positive integer"))
                })?;
                continue;
            }
            "from" => {
                filter.from = Some(value.parse().map_err(|_| {
                    HttpError::api(ErrorCode::InvalidTaskFrom, format!("Invalid value in parameter `from`: could not parse `{value}` as a positive integer"))
                })?);
                continue;
            }
            "beforeEnqueuedAt" => {
                filter.before_enqueued_at = Some(parse_date(
                    value,
                    ErrorCode::InvalidTaskBeforeEnqueuedAt,
                    "beforeEnqueuedAt",
                )?)
            }
            "afterEnqueuedAt" => {
                filter.after_enqueued_at = Some(parse_date(
                    value,
                    ErrorCode::InvalidTaskAfterEnqueuedAt,
                    "afterEnqueuedAt",
                )?)
            }
            "beforeStartedAt" => {
                filter.before_started_at = Some(parse_date(
                    value,
                    ErrorCode::InvalidTaskBeforeStartedAt,
                    "beforeStartedAt",
                )?)
            }
            "afterStartedAt" => {
                filter.after_started_at =
                    Some(parse_date(value, ErrorCode::InvalidTaskAfterStartedAt, "afterStartedAt")?)
            }
            "beforeFinishedAt" => {
                filter.before_finished_at = Some(parse_date(
                    value,
                    ErrorCode::InvalidTaskBeforeFinishedAt,
                    "beforeFinishedAt",
                )?)
            }
            "afterFinishedAt" => {
                filter.after_finished_at = Some(parse_date(
                    value,
                    ErrorCode::InvalidTaskAfterFinishedAt,
                    "afterFinishedAt",
                )?)
            }
            _ => continue,
        }
        any_filter = true;
    }
    Ok((filter, any_filter))
}

/// The reserved key-value namespace where Miroir keeps small facts of its own.
const NAMESPACE: &str = "miroir.core";

fn canceled_by_key(uid: u64) -> String {
    format!("task/{uid}/canceled-by")
}

/// A task as Meilisearch shows it, with `canceledBy` for a task a cancelation stopped.
async fn rendered(state: &AppState, record: &TaskRecord) -> HttpResult<Value> {
    let mut task = render(record);
    if record.status == TaskStatus::Canceled {
        let by = state.store().plugin_get(NAMESPACE, &canceled_by_key(record.uid)).await?;
        let by = by.and_then(|b| String::from_utf8(b).ok()).and_then(|b| b.parse::<u64>().ok());
        if let Some(by) = by {
            task["canceledBy"] = Value::from(by);
        }
    }
    Ok(task)
}

/// Refreshes every unfinished task, so status filters see derived statuses.
async fn refresh_unfinished(state: &AppState) -> HttpResult<()> {
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

/// `GET /tasks`.
pub async fn list_tasks(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    let (filter, _) = parse_filter(query.as_deref())?;
    refresh_unfinished(&state).await?;
    let page = state.store().list_tasks(&filter).await?;
    let mut results: Vec<Value> = Vec::with_capacity(page.results.len());
    for record in &page.results {
        results.push(rendered(&state, record).await?);
    }
    Ok(Json(json!({
        "results": results,
        "total": page.total,
        "limit": filter.limit,
        "from": page.results.first().map(|t| t.uid),
        "next": page.next,
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
    let (filter, any) = parse_filter(query.as_deref())?;
    if !any {
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
    let tasks = matching(state, &filter).await?;
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
