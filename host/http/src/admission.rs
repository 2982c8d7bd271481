//! Admission of client requests: a bounded number served at once, a deadline for slow senders,
//! and load shedding instead of an unbounded queue.
//!
//! - `/health` and `/_miroir/ready` are never counted, so probes answer however busy the gateway is.
//! - A request takes one of `server.max_concurrent_requests` slots; when none frees up within
//!   `server.queue_timeout` it is refused with 503 `miroir_overloaded` and `Retry-After: 1`.
//! - A body must arrive within `server.request_timeout` (else 408 `miroir_request_timeout`).
//!   Small bodies (up to [`EARLY_READ_BYTES`]) are read *before* the request takes a slot, so
//!   clients trickling small bodies cannot hold the slots; larger ones are read after, so that at
//!   most `max_concurrent_requests` large bodies are in memory at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::StreamExt as _;
use miroir_config::ServerConfig;
use miroir_types::ErrorCode;
use tokio::sync::Semaphore;

use crate::body::payload_too_large;
use crate::HttpError;

/// Bodies declared this small are read before the request takes a slot.
pub const EARLY_READ_BYTES: u64 = 64 * 1024;

/// The routes that never wait for a slot.
const PROBES: [&str; 2] = ["/health", "/_miroir/ready"];

/// The admission policy and its slots, shared by every request.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    request_timeout: Duration,
    max_body: u64,
}

impl Admission {
    /// The policy `server` configures.
    pub fn new(server: &ServerConfig) -> Self {
        let slots = usize::try_from(server.max_concurrent_requests).unwrap_or(usize::MAX).max(1);
        Admission {
            slots: Arc::new(Semaphore::new(slots.min(Semaphore::MAX_PERMITS))),
            queue_timeout: server.queue_timeout.get(),
            request_timeout: server.request_timeout.get(),
            max_body: server.max_body_bytes,
        }
    }

    /// Reads the whole body within `request_timeout` and puts it back as one chunk. With a
    /// declared length the buffer is allocated once at that size, so a large body is held once,
    /// never twice (chunks, then their concatenation).
    async fn buffer_body(
        &self,
        request: Request,
        declared: Option<u64>,
    ) -> Result<Request, HttpError> {
        let (parts, body) = request.into_parts();
        let limit = self.max_body;
        let read = async move {
            let capacity = declared.map_or(0, |length| usize::try_from(length).unwrap_or(0));
            let mut buffer = BytesMut::with_capacity(capacity);
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|error| {
                    HttpError::api(
                        ErrorCode::BadRequest,
                        format!("The request body could not be read: {error}."),
                    )
                })?;
                if (buffer.len() + chunk.len()) as u64 > limit {
                    return Err(payload_too_large(limit));
                }
                buffer.extend_from_slice(&chunk);
            }
            Ok::<Bytes, HttpError>(buffer.freeze())
        };
        let bytes = tokio::time::timeout(self.request_timeout, read)
            .await
            .map_err(|_| request_timeout(self.request_timeout))??;
        Ok(Request::from_parts(parts, Body::from(bytes)))
    }
}

/// The admission middleware (see the module documentation).
pub async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    if PROBES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
    let has_body = declared.map_or(chunked, |length| length > 0);
    // A body declared larger than the limit is refused further in, without reading it.
    let readable = has_body && declared.is_none_or(|length| length <= admission.max_body);
    let early = readable && declared.is_some_and(|length| length <= EARLY_READ_BYTES);

    let mut request = request;
    if early {
        request = match admission.buffer_body(request, declared).await {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        };
    }
    let permit = match tokio::time::timeout(
        admission.queue_timeout,
        Arc::clone(&admission.slots).acquire_owned(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        _ => return overloaded(admission.queue_timeout),
    };
    if readable && !early {
        request = match admission.buffer_body(request, declared).await {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        };
    }
    let response = next.run(request).await;
    drop(permit);
    response
}

/// 503 `miroir_overloaded`, with `Retry-After`.
fn overloaded(waited: Duration) -> Response {
    let mut response = HttpError::api(
        ErrorCode::MiroirOverloaded,
        format!(
            "Miroir is serving as many requests as it is configured to (`server.max_concurrent_requests`) \
             and none finished within {} ms. Retry the request.",
            waited.as_millis()
        ),
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 408 `miroir_request_timeout`.
fn request_timeout(limit: Duration) -> HttpError {
    HttpError::api(
        ErrorCode::MiroirRequestTimeout,
        format!(
            "The request body was not received within {} ms (`server.request_timeout`).",
            limit.as_millis()
        ),
    )
}
