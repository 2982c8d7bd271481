//! The one tower stack every request passes through, outermost first:
//!
//! 1. [`observe`]: takes or makes the `X-Request-Id` (echoed in the response and sent on every
//!    node request made for it), opens a tracing span for the request and logs method, route,
//!    status and duration when it ends;
//! 2. [`crate::admission::admit`]: request slots (`server.max_concurrent_requests`, probes
//!    exempt), load shedding after `server.queue_timeout`, the body deadline
//!    (`server.request_timeout`);
//! 3. [`limit_body`]: a body declared larger than `server.max_body_bytes` is refused with 413
//!    `miroir_payload_too_large` before anything is read (streamed bodies are cut by
//!    [`crate::body::RawBody`] with the same error);
//! 4. [`crate::auth::authenticate`];
//! 5. the route, whose errors all go through [`crate::error::HttpError`].

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::body::{payload_too_large, BodyLimit};
use crate::AppState;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// Request id and tracing for one request.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let span = tracing::info_span!("request", %method, %route, request_id = %id,
        status = tracing::field::Empty, duration_ms = tracing::field::Empty);
    let start = Instant::now();
    let mut response = miroir_cluster::with_request_id(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let elapsed = start.elapsed();
    span.record("status", response.status().as_u16());
    span.record("duration_ms", elapsed.as_millis() as u64);
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = elapsed.as_millis() as u64,
            "request served"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
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
