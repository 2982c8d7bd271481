//! Routes Miroir does not serve over shards, and routes no one serves, answered as one node
//! answers them.
//!
//! - A path no route of Miroir matches is asked of one node, with the method and path but no
//!   body and a credential no node accepts: a path the node does not know either answers its
//!   own "not found" (status and body relayed as they are), while a path the node serves
//!   refuses the credential before doing anything, and Miroir then answers its own `not_found`.
//! - The Meilisearch routes behind an experimental feature that Miroir does not serve over
//!   shards (chats, `render-template`, dynamic search rules, the log stream): while the
//!   feature is off on the nodes, one node is asked the client's request and its
//!   `feature_not_enabled` is the answer; once it is on, `miroir_not_supported`.
//! - `POST /export` (send this instance's data to another Meilisearch): `miroir_not_supported`,
//!   pointing to Miroir's logical backup.
//! - `/multi-search` when the multi-search plugin is not loaded (turned off, or on by default
//!   with its component not installed): `miroir_plugin_unavailable`, naming the flag.
//!
//! Each is listed in `docs/compatibility.md`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use miroir_cluster::{in_turn, NodeAuth, NodeBody, NodeRequest, NodeResponse, Turn};
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId};

use crate::auth::Caller;
use crate::body::RawBody;
use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// A credential no node accepts: a route the node serves refuses it before acting.
const PROBE_AUTH: &str = "Bearer miroir-unknown-route-probe";

/// The experimental feature that gates a path Miroir does not serve, if one does.
fn gating_feature(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["chats", ..] => Some("chatCompletions"),
        ["render-template"] | ["indexes", _, "render-template"] => Some("renderRoute"),
        ["dynamic-search-rules", ..] => Some("dynamicSearchRules"),
        ["logs", "stream" | "stderr"] => Some("logsRoute"),
        _ => None,
    }
}

/// Every route no handler of Miroir matches.
pub async fn fallback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    let path = uri.path();
    let path_and_query = uri.path_and_query().map_or(path, |p| p.as_str());
    let answer = if path == "/multi-search" {
        Err(multi_search_unavailable(&state))
    } else if let Some(feature) = gating_feature(path) {
        gated(&state, &caller, feature, (&method, path_and_query, &headers, body)).await
    } else if method == Method::POST && path == "/export" {
        Err(not_supported(
            &method,
            path,
            "Miroir exports an index with `GET /_miroir/indexes/{uid}/documents/export` (NDJSON) \
             and imports it through the normal write path.",
        ))
    } else {
        unknown(&state, &method, path_and_query).await
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// `/multi-search` when the multi-search plugin is not loaded: turned off, or on by default with
/// its component not installed. Names the flag and what to do.
fn multi_search_unavailable(state: &AppState) -> HttpError {
    let config = state.config();
    let message = if config.multi_search.enabled {
        format!(
            "`POST /multi-search` is served by the multi_search plugin, which is on by default \
             (`multi_search.enabled`), but its component `multi_search.wasm` was not found in \
             `plugins.dir` (`{}`) nor beside the miroir binary. Install the first-party plugins \
             (`make plugins`), set `plugins.dir`, or set `multi_search.enabled: false`.",
            config.plugins.dir.display()
        )
    } else {
        "`POST /multi-search` is served by the multi_search plugin, which is turned off \
         (`multi_search.enabled: false`). Set `multi_search.enabled: true` to serve it."
            .to_owned()
    };
    HttpError::api(ErrorCode::MiroirPluginUnavailable, message)
}

fn not_supported(method: &Method, path: &str, hint: &str) -> HttpError {
    HttpError::api(
        ErrorCode::MiroirNotSupported,
        format!(
            "`{method} {path}` is not served by Miroir over a sharded fleet. {hint} See \
             docs/compatibility.md."
        ),
    )
}

/// The nodes in topology order.
fn nodes(state: &AppState) -> Vec<NodeId> {
    state.topology().nodes().cloned().collect()
}

/// The first answer a node gives to `request` (nodes in topology order, [`in_turn`]), a 5xx
/// only when no node gave a better one; `None` when no node answers.
async fn ask_one(
    state: &AppState,
    auth: NodeAuth<'_>,
    (method, path, body): (&Method, &str, Option<NodeBody>),
) -> Option<NodeResponse> {
    let request = NodeRequest { method: method.clone(), path: path.to_owned(), body };
    let transport = crate::search::ClientTransport::new(state, auth);
    let read = in_turn(&transport, None, &nodes(state), &request, &|_| Turn::Take).await;
    read.answer.map(|(_, response)| response).or_else(|| read.last_failed?.ok())
}

/// A node's answer relayed as it is: status and body, JSON typed when there is a body.
fn relayed(response: NodeResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::NOT_FOUND);
    let empty = response.body.is_empty();
    let mut out = (status, response.body).into_response();
    if !empty {
        out.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    out
}

async fn unknown(state: &AppState, method: &Method, path: &str) -> HttpResult<Response> {
    let own = || HttpError::from(ApiError::route_not_found(method, path));
    match ask_one(state, NodeAuth::Client(PROBE_AUTH), (method, path, None)).await {
        Some(response) if response.status == 404 || response.status == 405 => Ok(relayed(response)),
        _ => Err(own()),
    }
}

async fn gated(
    state: &AppState,
    caller: &Caller,
    feature: &str,
    (method, path, headers, body): (&Method, &str, &HeaderMap, Bytes),
) -> HttpResult<Response> {
    let features =
        ask_one(state, NodeAuth::NodeKey, (&Method::GET, "/experimental-features", None))
            .await
            .filter(NodeResponse::is_success)
            .map(|r| r.json());
    let enabled = features.as_ref().is_some_and(|f| f[feature].as_bool() == Some(true));
    if enabled {
        return Err(not_supported(
            method,
            path.split('?').next().unwrap_or(path),
            &format!(
                "The `{feature}` experimental feature is on, but this route acts on one \
                 Meilisearch's own data and cannot be served over shards."
            ),
        ));
    }
    // Off: one node refuses it (`feature_not_enabled`) without acting.
    let content_type = match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(t) if t.starts_with("application/x-ndjson") => "application/x-ndjson",
        Some(t) if t.starts_with("text/csv") => "text/csv",
        _ => "application/json",
    };
    let node_body = (!body.is_empty()).then_some(NodeBody::new(content_type, body));
    match ask_one(state, caller.node_auth(), (method, path, node_body)).await {
        Some(response) if !response.is_success() => {
            Err(ForwardedError::new(response.status, response.body.to_vec()).into())
        }
        _ => Err(not_supported(
            method,
            path.split('?').next().unwrap_or(path),
            "This route acts on one Meilisearch's own data and cannot be served over shards.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_routes_are_known_by_their_feature() {
        assert_eq!(gating_feature("/chats/w/chat/completions"), Some("chatCompletions"));
        assert_eq!(gating_feature("/chats"), Some("chatCompletions"));
        assert_eq!(gating_feature("/indexes/m/documents/edit"), None);
        assert_eq!(gating_feature("/render-template"), Some("renderRoute"));
        assert_eq!(gating_feature("/logs/stream"), Some("logsRoute"));
        assert_eq!(gating_feature("/dynamic-search-rules"), Some("dynamicSearchRules"));
        assert_eq!(gating_feature("/indexes/m/documents"), None);
        assert_eq!(gating_feature("/nope"), None);
    }
}
