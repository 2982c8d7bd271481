//! Settings routes: the whole settings object and each sub-route.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{accepted, auth, check_uid, json_body, ok_json};
use crate::error::ApiError;
use crate::settings::{self as model, Settings};
use crate::state::Node;
use crate::tasks::TaskKind;

/// Settings of an index, or the defaults when it does not exist yet (404 as Meilisearch).
fn current(node: &Node, uid: &str) -> Result<Settings, ApiError> {
    let db = node.db();
    db.indexes.get(uid).map(|i| i.settings.clone()).ok_or_else(|| ApiError::index_not_found(uid))
}

fn unknown_route() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

pub async fn get_all(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "settings.get", Some(&uid))?;
    Ok(ok_json(current(&node, &uid)?.to_json()))
}

fn enqueue_patch(node: &Node, uid: String, patch: Value) -> Response {
    accepted(&node.enqueue(Some(uid), TaskKind::SettingsUpdate { patch }))
}

pub async fn update_all(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "settings.update", Some(&uid))?;
    let patch = model::validate_patch(&json_body(&headers, &body)?)?;
    Ok(enqueue_patch(&node, uid, patch))
}

pub async fn reset_all(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "settings.update", Some(&uid))?;
    Ok(enqueue_patch(&node, uid, model::reset_all_patch()))
}

pub async fn get_one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path((uid, segment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(field) = model::field_for_route(&segment) else { return Ok(unknown_route()) };
    check_uid(&uid)?;
    auth(&node, &headers, "settings.get", Some(&uid))?;
    let value = current(&node, &uid)?.field_json(field).unwrap_or(Value::Null);
    Ok(ok_json(value))
}

pub async fn update_one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path((uid, segment)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if model::field_for_route(&segment).is_none() {
        return Ok(unknown_route());
    }
    check_uid(&uid)?;
    auth(&node, &headers, "settings.update", Some(&uid))?;
    let patch = model::patch_for_route(&segment, &json_body(&headers, &body)?)?;
    Ok(enqueue_patch(&node, uid, patch))
}

pub async fn reset_one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path((uid, segment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let Some(patch) = model::reset_patch_for_route(&segment) else { return Ok(unknown_route()) };
    check_uid(&uid)?;
    auth(&node, &headers, "settings.update", Some(&uid))?;
    Ok(enqueue_patch(&node, uid, patch))
}
