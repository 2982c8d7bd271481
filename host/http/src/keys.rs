//! `/keys`: API keys are created on every node with the same `uid` (one is generated when the
//! client gives none), so every node derives the same key value
//! (HMAC-SHA256 of the node master key and the uid) and a request made with that key is valid
//! on every node Miroir forwards it to.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use miroir_cluster::{NodeAuth, NodeBody, NodeResponse};
use miroir_types::{ErrorCode, ForwardedError, NodeId};
use serde_json::Value;

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::default_keys;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeStep};
use crate::AppState;
use axum::http::Method;

fn relay(response: NodeResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut answer = (status, response.body).into_response();
    answer.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// Broadcasts one key request; every node must accept it.
async fn broadcast(state: &AppState, step: NodeStep) -> HttpResult<Response> {
    let outcomes =
        fanout::run(state, NodeAuth::NodeKey, fanout::broadcast(state, vec![step])).await;
    state.keys().clear();
    let mut first: Option<NodeResponse> = None;
    let mut failed: Vec<NodeId> = Vec::new();
    for (node, outcome) in outcomes {
        match outcome {
            Ok(response) if response.is_success() => {
                first.get_or_insert(response);
            }
            Ok(response) if (400..500).contains(&response.status) => {
                return Err(ForwardedError::new(response.status, response.body.to_vec()).into());
            }
            _ => failed.push(node),
        }
    }
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(ToString::to_string).collect();
        return Err(HttpError::api(
            ErrorCode::MiroirNoQuorum,
            format!("The key change did not reach node(s) {}.", names.join(", ")),
        ));
    }
    first.map(relay).ok_or_else(|| HttpError::Internal("no node configured".into()))
}

/// `POST /keys`.
pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let mut key = json_body(&headers, &body)?;
    if let Value::Object(map) = &mut key {
        if !map.contains_key("uid") {
            map.insert("uid".into(), Value::from(uuid::Uuid::new_v4().to_string()));
        }
    }
    let bytes = serde_json::to_vec(&key).map_err(|e| HttpError::Internal(e.to_string()))?;
    broadcast(&state, NodeStep::bookkeeping(Method::POST, "/keys", Some(NodeBody::json(bytes))))
        .await
}

/// `PATCH /keys/{key}`.
pub async fn update_key(
    State(state): State<AppState>,
    Path(key): Path<String>,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let step =
        NodeStep::bookkeeping(Method::PATCH, format!("/keys/{key}"), Some(NodeBody::json(body)));
    broadcast(&state, step).await
}

/// `DELETE /keys/{key}`; deleting one of Miroir's default keys also deletes the nodes' own
/// defaults of that name (see [`crate::default_keys`]).
pub async fn delete_key(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> HttpResult<Response> {
    let nodes: Vec<_> = state.topology().nodes().cloned().collect();
    let path = format!("/keys/{key}");
    let before = fanout::first_answer(&state, NodeAuth::NodeKey, nodes, Method::GET, &path, None)
        .await
        .ok()
        .filter(NodeResponse::is_success)
        .map(|response| response.json());
    if before.as_ref().is_some_and(default_keys::is_node_default) {
        return Err(not_found(&key));
    }
    let answer = broadcast(&state, NodeStep::bookkeeping(Method::DELETE, path, None)).await?;
    if let Some(name) = before.as_ref().and_then(|k| k.get("name")).and_then(Value::as_str) {
        if default_keys::is_default_name(name) {
            default_keys::forget(&state, name).await;
        }
    }
    Ok(answer)
}

fn not_found(key: &str) -> HttpError {
    HttpError::api(ErrorCode::ApiKeyNotFound, format!("API Key `{key}` not found."))
}

/// `GET /keys` and `GET /keys/{key}`: every node holds the same keys, so one answers; the
/// nodes' own default keys are replaced by Miroir's (see [`crate::default_keys`]).
pub async fn read_keys(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    request: Request,
) -> HttpResult<Response> {
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    default_keys::ensure(&state).await;
    let nodes: Vec<_> = state.topology().nodes().cloned().collect();
    let response =
        fanout::first_answer(&state, NodeAuth::NodeKey, nodes, Method::GET, &path, None).await?;
    if !response.is_success() {
        return Ok(relay(response));
    }
    let mut answer = response.json();
    if !default_keys::hide_node_defaults(&mut answer) {
        let key = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
        return Err(not_found(&key));
    }
    Ok((StatusCode::OK, axum::Json(answer)).into_response())
}
