//! `/keys` routes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{auth, json_body, ok_json, parse_usize, query_pairs};
use crate::error::ApiError;
use crate::keys::not_found;
use crate::state::Node;

fn master(node: &Node) -> Result<&str, ApiError> {
    node.master_key.as_deref().ok_or_else(|| {
        ApiError::new("missing_master_key", "Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.")
    })
}

pub async fn list(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    master(&node)?;
    auth(&node, &headers, "keys.get", None)?;
    let (mut offset, mut limit) = (0, 20);
    for (key, value) in query_pairs(q.as_deref()) {
        match key.as_str() {
            "offset" => offset = parse_usize("offset", &value, "invalid_api_key_offset")?,
            "limit" => limit = parse_usize("limit", &value, "invalid_api_key_limit")?,
            _ => {}
        }
    }
    let db = node.db();
    let mut keys: Vec<_> = db.keys.keys.values().collect();
    keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.uid.cmp(&b.uid)));
    let results: Vec<Value> = keys.iter().skip(offset).take(limit).map(|k| k.to_json()).collect();
    Ok(ok_json(
        json!({ "results": results, "offset": offset, "limit": limit, "total": keys.len() }),
    ))
}

pub async fn create(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let master_key = master(&node)?.to_string();
    auth(&node, &headers, "keys.create", None)?;
    let body = json_body(&headers, &body)?;
    let key = node.db().keys.create(&master_key, &body)?;
    Ok((StatusCode::CREATED, axum::Json(key.to_json())).into_response())
}

pub async fn get(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    master(&node)?;
    auth(&node, &headers, "keys.get", None)?;
    let db = node.db();
    let found = db.keys.find(&key).ok_or_else(|| not_found(&key))?;
    Ok(ok_json(found.to_json()))
}

pub async fn update(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    master(&node)?;
    auth(&node, &headers, "keys.update", None)?;
    let body = json_body(&headers, &body)?;
    let updated = node.db().keys.update(&key, &body)?;
    Ok(ok_json(updated.to_json()))
}

pub async fn delete(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    master(&node)?;
    auth(&node, &headers, "keys.delete", None)?;
    node.db().keys.delete(&key)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
