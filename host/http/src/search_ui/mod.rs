//! The end-user search page (`search_ui`): a page served by Miroir that searches as the visitor
//! types, with highlights, facet filters, sorting and pages, and the per-client rate limit of
//! its requests.
//!
//! Everything under `search_ui.path` is open (no `Authorization` needed) and rate-limited per
//! client IP ([`Gate`]). The page's searches go to `{path}/api/indexes/{uid}/search` and are
//! made with `search_ui.api_key` (a search-only key or a tenant token), exactly as a client
//! holding that key would make them: the key never reaches the browser and cannot be swapped
//! for another. The assets are compiled into the binary (no CDN: the page works offline).

mod client_ip;
mod local_buckets;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use miroir_cluster::NodeAuth;
use miroir_config::RateLimitBackend;
use miroir_types::{ApiError, ErrorCode, NodeId, RateLimiter};
use serde_json::{json, Value};

pub use client_ip::TrustedProxies;
pub use local_buckets::LocalBuckets;

use crate::auth::Caller;
use crate::body::RawBody;
use crate::error::{HttpError, HttpResult};
use crate::AppState;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// What every request to the page passes: who the client is, and its bucket.
pub struct Gate {
    proxies: TrustedProxies,
    limiter: Arc<dyn RateLimiter>,
}

impl Gate {
    /// The gate of `config`'s page with `limiter`'s buckets.
    pub fn new(config: &miroir_config::SearchUiConfig, limiter: Arc<dyn RateLimiter>) -> Self {
        Gate { proxies: TrustedProxies::parse(&config.trusted_proxies), limiter }
    }

    /// The gate with buckets in this instance's memory (`backend: local`).
    pub fn local(config: &miroir_config::SearchUiConfig) -> Self {
        let limit = &config.rate_limit;
        if limit.backend == RateLimitBackend::Redis {
            tracing::warn!("search_ui: no shared rate limiter installed, counting per instance");
        }
        Gate::new(config, Arc::new(LocalBuckets::new(limit.per_ip, limit.burst)))
    }
}

/// The page's base path (`search_ui.path` without a trailing `/`) when the page is on.
fn base(state: &AppState) -> Option<&str> {
    let config = &state.config().search_ui;
    config.enabled.then(|| config.path.trim_end_matches('/'))
}

/// Whether `path` is one of the page's (open at the auth layer: the page authenticates its
/// searches with its own key).
pub(crate) fn serves(state: &AppState, path: &str) -> bool {
    base(state).is_some_and(|base| {
        path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The page's routes, empty when `search_ui.enabled` is off.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let Some(base) = base(state) else { return Router::new() };
    Router::new()
        .route(base, get(page))
        .route(&format!("{base}/"), get(page))
        .route(&format!("{base}/app.js"), get(script))
        .route(&format!("{base}/app.css"), get(style))
        .route(&format!("{base}/api/indexes"), get(indexes))
        .route(&format!("{base}/api/indexes/{{uid}}/search"), post(search))
        .route_layer(middleware::from_fn_with_state(state.clone(), limit))
}

/// The rate limit: one token from the client's bucket, or 429 `miroir_rate_limited` with
/// `Retry-After`.
async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let gate = state.search_ui_gate();
    let client = gate.proxies.client(peer, request.headers());
    match gate.limiter.acquire(&client.to_string()).await {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait),
    }
}

fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let error = ApiError::new(
        ErrorCode::MiroirRateLimited,
        format!("Too many requests from this address: retry in {seconds} s."),
    );
    let mut response = HttpError::from(error).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn asset(content_type: &'static str, body: String) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CACHE_CONTROL, "no-cache"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    ];
    (headers, body).into_response()
}

async fn page(State(state): State<AppState>) -> Response {
    let base = base(&state).unwrap_or_default();
    asset("text/html; charset=utf-8", PAGE.replace("{{BASE}}", base))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT.to_owned())
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE.to_owned())
}

/// The page's key as a caller would present it for a search of `uid`: refused like a client
/// presenting it would be (a key without the `search` action, a revoked key).
async fn caller(state: &AppState, uid: &str) -> HttpResult<Caller> {
    let key = state.config().search_ui.api_key.as_deref().unwrap_or_default();
    let path = format!("/indexes/{uid}/search");
    crate::auth::caller_for(state, Method::POST, &path, &format!("Bearer {key}")).await
}

/// Whether the page offers `uid` (`search_ui.indexes`, or every index when it names none).
fn offered(state: &AppState, uid: &str) -> bool {
    let indexes = &state.config().search_ui.indexes;
    indexes.is_empty() || indexes.iter().any(|i| i == uid)
}

/// `POST {path}/api/indexes/{uid}/search`: a search of `uid` with the page's key.
async fn search(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    mut headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    if !offered(&state, &uid) {
        return Err(ApiError::index_not_found(&uid).into());
    }
    let caller = caller(&state, &uid).await?;
    headers.remove(header::AUTHORIZATION);
    let request = crate::search::json_request(&body)?;
    crate::search::scatter_gather(&state, &caller, &uid, &headers, request, Some(body)).await
}

/// `GET {path}/api/indexes`: the indexes the page offers and the key may search, each with what
/// the page needs to build its filters and sort options.
async fn indexes(State(state): State<AppState>) -> HttpResult<Response> {
    let mut results = Vec::new();
    let mut known = state.catalog().list_indexes().await?;
    let order = &state.config().search_ui.indexes;
    known.sort_by_key(|meta| order.iter().position(|i| *i == meta.uid).unwrap_or(usize::MAX));
    for meta in known.into_iter().filter(|meta| offered(&state, &meta.uid)) {
        let Ok(caller) = caller(&state, &meta.uid).await else { continue };
        if !caller.sees_index(&meta.uid) {
            continue;
        }
        let settings = index_settings(&state, &meta.uid).await?;
        results.push(json!({
            "uid": meta.uid,
            "primaryKey": meta.primary_key,
            "filterableAttributes": names(&settings["filterableAttributes"]),
            "sortableAttributes": names(&settings["sortableAttributes"]),
        }));
    }
    Ok(Json(json!({ "results": results })).into_response())
}

/// The client's view of `uid`'s settings, read from a node.
async fn index_settings(state: &AppState, uid: &str) -> HttpResult<Value> {
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let path = format!("/indexes/{uid}/settings");
    let response =
        crate::fanout::first_answer(state, NodeAuth::NodeKey, nodes, Method::GET, &path, None)
            .await?;
    let mut settings = response.json();
    crate::settings::translate::client_settings(&mut settings);
    Ok(settings)
}

/// Attribute names of a settings list: plain names, and the exact names of attribute patterns
/// (wildcard patterns name no attribute the page could offer).
fn names(list: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for item in list.as_array().into_iter().flatten() {
        let patterns = match item {
            Value::String(name) => vec![name.as_str()],
            other => other["attributePatterns"]
                .as_array()
                .map(|p| p.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
        };
        out.extend(patterns.into_iter().filter(|p| !p.contains('*')).map(str::to_owned));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_settings_offer_their_exact_names_only() {
        let list = json!(["genre", {"attributePatterns": ["year", "tags.*"]}, "*"]);
        assert_eq!(names(&list), ["genre", "year"]);
    }

    #[test]
    fn the_wait_is_given_in_whole_seconds_of_at_least_one() {
        let response = too_many_requests(Duration::from_millis(1200));
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let response = too_many_requests(Duration::from_millis(10));
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
