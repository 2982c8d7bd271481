//! The HTTP API: the router, and what every handler shares (authorization, body and query
//! parsing).

mod documents;
mod facet_search;
mod fields;
mod indexes;
mod keys;
mod misc;
mod multi_search;
pub(crate) mod replay;
mod search;
mod settings;
mod similar;
mod tasks;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;

use crate::error::ApiError;
use crate::keys::{authorize, Access};
use crate::state::Node;
use crate::tasks::Task;

/// Meilisearch's default payload limit (100 MB).
const MAX_PAYLOAD_BYTES: usize = 100 * 1024 * 1024;

/// The whole API as a router, ready to serve.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/health", get(misc::health))
        .route("/version", get(misc::version))
        .route("/stats", get(misc::stats))
        .route(
            "/experimental-features",
            get(misc::experimental_get).patch(misc::experimental_patch),
        )
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{key}", get(keys::get).patch(keys::update).delete(keys::delete))
        .route("/indexes", get(indexes::list).post(indexes::create))
        .route("/indexes/{uid}", get(indexes::get).patch(indexes::update).delete(indexes::delete))
        .route("/indexes/{uid}/stats", get(indexes::stats))
        .route("/indexes/{uid}/compact", post(tasks::compact_index))
        .route("/indexes/{uid}/fields", post(fields::list_fields))
        .route("/swap-indexes", post(indexes::swap))
        .route(
            "/indexes/{uid}/settings",
            get(settings::get_all).patch(settings::update_all).delete(settings::reset_all),
        )
        .route(
            "/indexes/{uid}/settings/{segment}",
            get(settings::get_one)
                .put(settings::update_one)
                .patch(settings::update_one)
                .post(settings::update_one)
                .delete(settings::reset_one),
        )
        .route(
            "/indexes/{uid}/documents",
            get(documents::browse)
                .post(documents::add_or_replace)
                .put(documents::add_or_update)
                .delete(documents::clear),
        )
        .route("/indexes/{uid}/documents/fetch", post(documents::fetch))
        .route("/indexes/{uid}/documents/delete-batch", post(documents::delete_batch))
        .route("/indexes/{uid}/documents/delete", post(documents::delete_by_filter))
        .route("/indexes/{uid}/documents/edit", post(documents::edit_by_function))
        .route(
            "/indexes/{uid}/documents/{id}",
            get(documents::get_one).delete(documents::delete_one),
        )
        .merge(search_routes(Arc::clone(&node)))
        .route("/tasks", get(tasks::list).delete(tasks::delete))
        .route("/tasks/cancel", post(tasks::cancel))
        .route("/tasks/{uid}", get(tasks::get_one))
        .route("/batches", get(tasks::list_batches))
        .route("/batches/{uid}", get(tasks::get_batch))
        .route("/dumps", post(tasks::create_dump))
        .route("/snapshots", post(tasks::create_snapshot))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
        .layer(middleware::from_fn_with_state(Arc::clone(&node), custom_metadata))
        .layer(middleware::from_fn_with_state(Arc::clone(&node), response_delay))
        .layer(middleware::from_fn_with_state(Arc::clone(&node), remember_trace))
        .with_state(node)
}

/// Records the `customMetadata` query parameter of a write on the task it enqueued.
async fn custom_metadata(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let metadata = (request.method() != axum::http::Method::GET)
        .then(|| query_pairs(request.uri().query()))
        .and_then(|pairs| pairs.into_iter().find(|(name, _)| name == "customMetadata"))
        .map(|(_, value)| value);
    let Some(metadata) = metadata else { return next.run(request).await };
    let response = next.run(request).await;
    if response.status() != StatusCode::ACCEPTED {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let uid = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v["taskUid"].as_u64());
    if let Some(uid) = uid {
        if let Some(task) = node.db().tasks.get_mut(&(uid as u32)) {
            task.custom_metadata = Some(metadata);
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Remembers the W3C trace headers a request carried, for tests (see
/// [`Node::received_traces`]). Like Meilisearch, the node otherwise ignores them.
async fn remember_trace(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let trace = header("traceparent").map(|traceparent| crate::state::ReceivedTrace {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        traceparent,
        tracestate: header("tracestate"),
    });
    if let Some(trace) = trace {
        node.remember_trace(trace);
    }
    next.run(request).await
}

/// Waits the node's response delay (see [`Node::set_response_delay`]) before answering.
async fn response_delay(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let delay = node.response_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    next.run(request).await
}

/// The search-like routes, behind the node's optional search delay.
fn search_routes(node: Arc<Node>) -> Router<Arc<Node>> {
    Router::new()
        .route("/indexes/{uid}/search", get(search::search_get).post(search::search_post))
        .route("/indexes/{uid}/facet-search", post(facet_search::facet_search_post))
        .route("/indexes/{uid}/similar", get(similar::similar_get).post(similar::similar_post))
        .route("/multi-search", post(multi_search::multi_search))
        .layer(middleware::from_fn_with_state(Arc::clone(&node), replay::replay))
        .layer(middleware::from_fn_with_state(node, search_delay))
}

/// Waits the node's search delay (see [`Node::set_search_delay`]) before answering.
async fn search_delay(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let delay = node.search_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    next.run(request).await
}

/// Check the request's bearer token for `action` (on `index`, when the route has one).
pub(crate) fn auth(
    node: &Node,
    headers: &HeaderMap,
    action: &str,
    index: Option<&str>,
) -> Result<Access, ApiError> {
    let header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    authorize(node.master_key.as_deref(), &node.db().keys, header, action, index)
}

/// Adds a tenant token's rule filter to a JSON search body (both must hold).
pub(crate) fn restrict_body(body: &mut Value, rule: Option<Value>) {
    let (Some(rule), Value::Object(map)) = (rule, body) else { return };
    let filter = crate::tenant::restrict(map.get("filter"), &rule);
    map.insert("filter".into(), filter);
}

/// Adds a tenant token's rule filter to `GET` search parameters (both must hold).
pub(crate) fn restrict_pairs(pairs: &mut Vec<(String, String)>, rule: Option<Value>) {
    let Some(rule) = rule else { return };
    let rule = crate::tenant::expression(&rule);
    match pairs.iter_mut().find(|(name, _)| name == "filter") {
        Some((_, filter)) => *filter = format!("{rule} AND ({filter})"),
        None => pairs.push(("filter".into(), rule)),
    }
}

pub use crate::index::is_valid_index_uid;

pub(crate) fn invalid_index_uid(uid: &str) -> ApiError {
    ApiError::new("invalid_index_uid", format!("`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes."))
}

/// Refuse an index uid in a path that Meilisearch would refuse.
pub(crate) fn check_uid(uid: &str) -> Result<(), ApiError> {
    if is_valid_index_uid(uid) {
        Ok(())
    } else {
        Err(invalid_index_uid(uid))
    }
}

/// Parse a JSON body, with Meilisearch's errors for a wrong content type or malformed JSON.
pub(crate) fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    const ACCEPTED: &str = "Accepted values for the Content-Type header are: `application/json`";
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new("missing_payload", "A json payload is missing."));
    }
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        None => {
            return Err(ApiError::new(
                "missing_content_type",
                format!("A Content-Type header is missing. {ACCEPTED}"),
            ))
        }
        Some(ct) if !ct.to_ascii_lowercase().starts_with("application/json") => {
            return Err(ApiError::new(
                "invalid_content_type",
                format!("The Content-Type `{ct}` is invalid. {ACCEPTED}"),
            ))
        }
        Some(_) => {}
    }
    serde_json::from_slice(body).map_err(ApiError::malformed_json)
}

/// Decoded query-string pairs.
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// A comma-separated query parameter as a list.
pub(crate) fn comma_list(value: &str) -> Vec<String> {
    value.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// `202 Accepted` with the enqueued task's summary.
pub(crate) fn accepted(task: &Task) -> Response {
    (StatusCode::ACCEPTED, axum::Json(task.summary_json())).into_response()
}

/// A `200 OK` JSON answer.
pub(crate) fn ok_json(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// Parse a non-negative integer query parameter, or fail with `code`.
pub(crate) fn parse_usize(name: &str, value: &str, code: &str) -> Result<usize, ApiError> {
    value.parse().map_err(|_| {
        ApiError::new(code, format!("Invalid value in parameter `{name}`: could not parse `{value}` as a positive integer"))
    })
}
