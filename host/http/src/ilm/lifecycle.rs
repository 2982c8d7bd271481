//! The leader's side of index lifecycle: every `ilm.check_interval`, for every policy, roll over
//! the index written to when a condition is met, delete backing indexes past retention, and
//! align older backing indexes' settings with the current one's. Every change of the record is
//! fenced by the leader's lease, and each step is safe to repeat: a leader that stops half way
//! (after creating the next index, before recording it) is followed by one that creates nothing
//! new, finds that index, finishes it and records it, so exactly one new index comes of it.
//!
//! The backing indexes are created, configured and deleted through the gateway's own routes (as
//! the master key), so they are ordinary indexes on every node, tasks included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use miroir_config::IlmPolicy;
use miroir_store::{Fence, LeaderState};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::now_ms;
use super::record::{self, backing_index, Record};
use crate::auth::Caller;
use crate::body::RawBody;
use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// How often every instance re-reads the records.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// The longest wait for one of the gateway's own tasks (creating, configuring, deleting).
const TASK_WAIT: Duration = Duration::from_secs(120);

/// What the leader did, for metrics.
#[derive(Debug, Default)]
pub struct IlmCounters {
    /// Rollovers done.
    pub rollovers: AtomicU64,
    /// Backing indexes deleted by retention.
    pub deleted: AtomicU64,
    /// Checks that failed (retried at the next interval).
    pub failures: AtomicU64,
}

/// Re-reads the records every second, on every instance; ends with the runtime.
pub fn follow(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = super::refresh(&state).await {
                tracing::debug!(%error, "cannot re-read the ilm records");
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    })
}

/// Starts the leader's loop; it checks while this instance leads and ends when the election
/// stops.
pub fn spawn(
    state: AppState,
    leader: watch::Receiver<LeaderState>,
    lease: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let interval = state.config().ilm.check_interval.get();
        crate::leading::while_leading(leader, &lease, "index lifecycle", |fence| {
            let state = state.clone();
            async move {
                check_all(&state, &fence).await;
                tokio::time::sleep(interval).await;
            }
        })
        .await;
    })
}

/// One check of every policy.
pub async fn check_all(state: &AppState, fence: &Fence) {
    for policy in &state.config().ilm.policies {
        if let Err(error) = check(state, policy, fence).await {
            state.ilm_counters().failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, pattern = %policy.pattern, "index lifecycle check failed");
        }
    }
}

async fn check(state: &AppState, policy: &IlmPolicy, fence: &Fence) -> HttpResult<()> {
    let mut record = match record::load(state, &policy.pattern).await? {
        Some(record) => record,
        None => record::save(state, &Record::first(&policy.pattern, now_ms()), fence).await?,
    };
    state.lifecycles().remember(record.clone());
    if rollover_due(state, policy, &record).await? {
        let current = record.current().clone();
        let next = backing_index(&policy.pattern, current.number + 1);
        let from_version = settings_version(state, &current.index).await?;
        create_like(state, &current.index, &next).await?;
        let mut rolled = record.rolled_over(now_ms());
        let count = rolled.generations.len();
        rolled.generations[count - 2].settings_version = from_version;
        rolled.generations[count - 1].settings_version = settings_version(state, &next).await?;
        record = record::save(state, &rolled, fence).await?;
        state.lifecycles().remember(record.clone());
        state.ilm_counters().rollovers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(pattern = %policy.pattern, from = %current.index, to = %next, "rolled over");
    }
    if let Some(keep) = policy.delete_after {
        let now = now_ms();
        let keep_ms = u64::try_from(keep.get().as_millis()).unwrap_or(u64::MAX);
        let expired: Vec<usize> = (0..record.generations.len().saturating_sub(1))
            .filter(|&i| {
                let g = &record.generations[i];
                g.deleted_at_ms.is_none()
                    && g.rolled_at_ms.is_some_and(|at| at.saturating_add(keep_ms) <= now)
            })
            .collect();
        for i in expired {
            let index = record.generations[i].index.clone();
            delete(state, &index).await?;
            let mut next = record.clone();
            next.generations[i].deleted_at_ms = Some(now_ms());
            record = record::save(state, &next, fence).await?;
            state.lifecycles().remember(record.clone());
            state.ilm_counters().deleted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(pattern = %policy.pattern, %index, "deleted past retention");
        }
    }
    align_settings(state, record, fence).await
}

/// The settings version of `index` in the catalog; none when it does not exist.
async fn settings_version(state: &AppState, index: &str) -> HttpResult<Option<u64>> {
    Ok(state.catalog().get_index(index).await?.map(|meta| meta.settings_version))
}

/// Whether the index written to meets one of `policy`'s conditions. An index holding no
/// document (or not created yet: nothing was written) never rolls over.
async fn rollover_due(state: &AppState, policy: &IlmPolicy, record: &Record) -> HttpResult<bool> {
    let current = record.current();
    let stats = match stats(state, &current.index).await {
        Ok(stats) => stats,
        Err(error) if error.is_index_not_found() => return Ok(false),
        Err(error) => return Err(error),
    };
    let documents = stats["numberOfDocuments"].as_u64().unwrap_or(0);
    if documents == 0 {
        return Ok(false);
    }
    let conditions = &policy.rollover;
    let age_ms = now_ms().saturating_sub(current.created_at_ms);
    let size = stats["rawDocumentDbSize"].as_u64().unwrap_or(0);
    Ok(conditions.max_documents.is_some_and(|max| documents >= max)
        || conditions.max_age.is_some_and(|max| u128::from(age_ms) >= max.get().as_millis())
        || conditions.max_size.is_some_and(|max| size >= max.as_u64()))
}

/// Creates `to` with `from`'s primary key and settings; an index `to` that exists already (a
/// leader stopped half way) is configured again.
async fn create_like(state: &AppState, from: &str, to: &str) -> HttpResult<()> {
    let primary_key = state.catalog().get_index(from).await?.and_then(|meta| meta.primary_key);
    let body = json!({ "uid": to, "primaryKey": primary_key });
    let created = match indexes_create(state, body).await {
        Ok(answer) => wait(state, &answer).await,
        Err(error) => Err(error),
    };
    match created {
        Err(error) if code_of(&error).as_deref() != Some("index_already_exists") => {
            return Err(error)
        }
        _ => {}
    }
    let settings = settings_of(state, from).await?;
    wait(state, &settings_update(state, to, settings).await?).await
}

/// Makes every live backing index's settings equal. Settings written to the pattern go to the
/// index written to, but an instance that has not yet seen a rollover sends them to the one
/// before: the index whose settings changed since the last alignment is the source (the index
/// written to when several changed), and the others take its settings.
async fn align_settings(state: &AppState, record: Record, fence: &Fence) -> HttpResult<()> {
    let mut versions = Vec::new();
    for generation in record.live() {
        versions.push((generation, settings_version(state, &generation.index).await?));
    }
    let changed: Vec<&str> = versions
        .iter()
        .filter(|(g, now)| now.is_some() && *now != g.settings_version)
        .map(|(g, _)| g.index.as_str())
        .collect();
    let current = record.current().index.as_str();
    let source = if changed.contains(&current) { Some(current) } else { changed.last().copied() };
    let Some(source) = source else { return Ok(()) };
    let wanted = settings_of(state, source).await?;
    for (generation, now) in &versions {
        let index = generation.index.as_str();
        if index == source || now.is_none() || settings_of(state, index).await? == wanted {
            continue;
        }
        tracing::info!(%index, %source, "settings aligned across backing indexes");
        wait(state, &settings_update(state, index, wanted.clone()).await?).await?;
    }
    let mut aligned = record.clone();
    for generation in aligned.generations.iter_mut().filter(|g| g.deleted_at_ms.is_none()) {
        generation.settings_version = settings_version(state, &generation.index).await?;
    }
    let saved = record::save(state, &aligned, fence).await?;
    state.lifecycles().remember(saved);
    Ok(())
}

/// Deletes `index`; one already gone is fine.
async fn delete(state: &AppState, index: &str) -> HttpResult<()> {
    let answer = crate::indexes::delete_index(
        State(state.clone()),
        Extension(Caller::Master),
        Path(index.to_owned()),
    )
    .await;
    match call(answer).await {
        Ok(answer) => match wait(state, &answer).await {
            Err(error) if code_of(&error).as_deref() == Some("index_not_found") => Ok(()),
            other => other,
        },
        Err(error) if error.is_index_not_found() => Ok(()),
        Err(error) => Err(error),
    }
}

async fn indexes_create(state: &AppState, body: Value) -> HttpResult<Value> {
    let answer = crate::indexes::create_index(
        State(state.clone()),
        Extension(Caller::Master),
        json_headers(),
        RawBody(Bytes::from(body.to_string())),
    )
    .await;
    call(answer).await
}

async fn stats(state: &AppState, index: &str) -> HttpResult<Value> {
    let answer = crate::stats::index_stats(
        State(state.clone()),
        Extension(Caller::Master),
        Path(index.to_owned()),
        RawQuery(None),
    )
    .await;
    call(answer).await
}

async fn settings_of(state: &AppState, index: &str) -> HttpResult<Value> {
    let answer = crate::settings::get_all(
        State(state.clone()),
        Extension(Caller::Master),
        Path(index.to_owned()),
    )
    .await;
    call(answer).await
}

async fn settings_update(state: &AppState, index: &str, settings: Value) -> HttpResult<Value> {
    let answer = crate::settings::update_all(
        State(state.clone()),
        Extension(Caller::Master),
        Path(index.to_owned()),
        json_headers(),
        RawBody(Bytes::from(settings.to_string())),
    )
    .await;
    call(answer).await
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, "application/json".parse().expect("static"));
    headers
}

/// The JSON a route answered, or its error (a non-2xx answer becomes a forwarded error).
async fn call(answer: HttpResult<Response>) -> HttpResult<Value> {
    let response = answer?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| HttpError::Internal(format!("cannot read a route's answer: {e}")))?;
    if !status.is_success() {
        return Err(miroir_types::ForwardedError::new(status.as_u16(), body.to_vec()).into());
    }
    serde_json::from_slice(&body).map_err(|e| HttpError::Internal(format!("not JSON: {e}")))
}

/// The Meilisearch `code` of an error.
fn code_of(error: &HttpError) -> Option<String> {
    match error {
        HttpError::Api(api) => Some(api.code().name().to_owned()),
        HttpError::Forwarded(forwarded) => forwarded.code_name(),
        _ => None,
    }
}

/// Waits until the task of a 202 `answer` ended; its error when it failed.
async fn wait(state: &AppState, answer: &Value) -> HttpResult<()> {
    let Some(uid) = answer["taskUid"].as_u64() else { return Ok(()) };
    let deadline = tokio::time::Instant::now() + TASK_WAIT;
    loop {
        let task =
            call(crate::tasks::routes::get_task(State(state.clone()), Path(uid.to_string())).await)
                .await?;
        match task["status"].as_str() {
            Some("succeeded") => return Ok(()),
            Some("failed" | "canceled") => {
                let error = task["error"].clone();
                return Err(
                    miroir_types::ForwardedError::new(400, error.to_string().into_bytes()).into()
                );
            }
            _ if tokio::time::Instant::now() > deadline => {
                return Err(HttpError::Internal(format!("task {uid} did not end in time")));
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
