//! The one tower stack every request passes through, outermost first:
//!
//! 1. [`observe`]: takes or makes the `X-Request-Id` (echoed in the response and sent on every
//!    node request made for it), opens the request's trace span (joining the client's W3C
//!    `traceparent`) and logs one line when it ends: method, route, status, duration, fan-out,
//!    degraded shards, trace id;
//! 2. [`crate::admission::admit`]: request slots (`server.max_concurrent_requests`, probes
//!    exempt), load shedding after `server.queue_timeout`, the body deadline
//!    (`server.request_timeout`);
//! 3. [`limit_body`]: a body declared larger than `server.max_body_bytes` is refused with 413
//!    `miroir_payload_too_large` before anything is read (streamed bodies are cut by
//!    [`crate::body::RawBody`] with the same error);
//! 4. [`crate::auth::authenticate`];
//! 5. the route, whose errors all go through [`crate::error::HttpError`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use miroir_cluster::trace_context::RequestFigures;
use tracing::field::Empty;
use tracing::Instrument;

use crate::body::{payload_too_large, BodyLimit};
use crate::AppState;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Request id, trace span and request log line for one request.
///
/// The span (`request`, exported as `METHOD /route/{template}`) joins the client's W3C trace
/// when the request carries a `traceparent`; node requests made for it are its children and
/// carry its context on to the nodes. One `request served` line is logged at info level when
/// the answer is ready, with the figures operators filter on.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| new_request_id().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let method = request.method().clone();
    let template = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let index = template.as_deref().and_then(|t| index_of(t, request.uri().path()));
    let route = template.unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = %route,
        index = index.as_deref().unwrap_or(""),
        request_id = %id,
        http.response.status_code = Empty,
        fanout = Empty,
        degraded = Empty,
    );
    miroir_cluster::trace_context::adopt_remote_parent(&span, request.headers());
    let figures = RequestFigures::new();
    let start = Instant::now();
    let mut response =
        miroir_cluster::with_request(id.clone(), Arc::clone(&figures), next.run(request))
            .instrument(span.clone())
            .await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    let fanout = figures.node_calls();
    let degraded = response
        .headers()
        .get(crate::fanout::DEGRADED)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    span.record("http.response.status_code", status);
    span.record("fanout", fanout);
    if !degraded.is_empty() {
        span.record("degraded", degraded.as_str());
    }
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    let trace_id = miroir_cluster::trace_context::trace_id(&span).unwrap_or_default();
    span.in_scope(|| {
        tracing::info!(
            %method,
            %route,
            status,
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            fanout,
            %degraded,
            %trace_id,
            request_id = %id,
            "request served"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// A random (version 4) UUID for a request without an id. Request ids need to be unique, not
/// unguessable: they come from a per-thread generator (splitmix64, seeded from the system's
/// randomness once per thread) rather than a `getrandom` call per request.
fn new_request_id() -> uuid::Uuid {
    thread_local! {
        static STATE: std::cell::Cell<u64> =
            std::cell::Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    let next = || {
        STATE.with(|state| {
            let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    };
    let bytes = (u128::from(next()) << 64 | u128::from(next())).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The index a request is about: the path segment standing where the route template has a
/// parameter right after `indexes/` (`/indexes/{uid}/search`, not `/tasks/{uid}`).
fn index_of(template: &str, path: &str) -> Option<String> {
    let segments: Vec<&str> = template.split('/').collect();
    let position =
        segments.windows(2).position(|pair| pair[0] == "indexes" && pair[1].starts_with('{'))? + 1;
    path.split('/').nth(position).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Refuses a body whose declared length exceeds the limit, before reading it.
pub async fn limit_body(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let limit = state.config().server.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return payload_too_large(limit).into_response();
    }
    request.extensions_mut().insert(BodyLimit(limit));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::index_of;

    #[test]
    fn request_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::BTreeSet<uuid::Uuid> =
            (0..1000).map(|_| super::new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }

    #[test]
    fn the_index_is_read_where_the_template_names_it() {
        let index = index_of("/indexes/{uid}/search", "/indexes/movies/search");
        assert_eq!(index.as_deref(), Some("movies"));
        assert_eq!(index_of("/indexes", "/indexes"), None);
        assert_eq!(index_of("/tasks/{uid}", "/tasks/3"), None);
    }
}
