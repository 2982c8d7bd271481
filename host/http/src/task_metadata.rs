//! `customMetadata`: an arbitrary string a client attaches to a write (a query parameter of any
//! route that enqueues a task), shown on the Miroir task it created.
//!
//! A layer reads the parameter, lets the route run, and when the route answered `202 Accepted`
//! with a `taskUid` keeps the string in the task store's key-value space, apart from the task
//! record, so no refresh of the task can lose it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::HttpResult;
use crate::AppState;

/// The reserved key-value namespace where Miroir keeps small facts about its tasks.
pub const NAMESPACE: &str = "miroir.core";

/// The largest `202` body read back (a summarized task is far smaller).
const MAX_SUMMARY_BYTES: usize = 64 * 1024;

fn key(uid: u64) -> String {
    format!("task/{uid}/custom-metadata")
}

fn requested(request: &Request) -> Option<String> {
    if request.method() == Method::GET {
        return None;
    }
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "customMetadata")
        .map(|(_, value)| value.into_owned())
}

/// The layer: records the `customMetadata` of a write on the task the write enqueued.
pub async fn capture(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(metadata) = requested(&request) else { return next.run(request).await };
    let response = next.run(request).await;
    if response.status() != StatusCode::ACCEPTED {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SUMMARY_BYTES).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let uid = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v["taskUid"].as_u64());
    if let Some(uid) = uid {
        if let Err(error) =
            state.store().plugin_put(NAMESPACE, &key(uid), metadata.as_bytes()).await
        {
            tracing::warn!(task = uid, %error, "customMetadata not recorded");
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The `customMetadata` of task `uid`, if its write gave one.
pub async fn of_task(state: &AppState, uid: u64) -> HttpResult<Option<String>> {
    let stored = state.store().plugin_get(NAMESPACE, &key(uid)).await?;
    Ok(stored.and_then(|bytes| String::from_utf8(bytes).ok()))
}

/// Forgets the `customMetadata` of task `uid` (a deleted task).
pub async fn forget(state: &AppState, uid: u64) -> HttpResult<()> {
    state.store().plugin_delete(NAMESPACE, &key(uid)).await?;
    Ok(())
}
