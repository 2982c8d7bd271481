//! Reading request bodies with the size limit, and Meilisearch's errors for bad ones.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use miroir_types::{ApiError, ErrorCode};

use crate::error::HttpError;

/// The whole request body, at most `server.max_body_bytes` long (the router's
/// `DefaultBodyLimit`); a longer body is `miroir_payload_too_large`.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = request.extensions().get::<BodyLimit>().map(|l| l.0);
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(payload_too_large(limit.unwrap_or(0)))
            }
            Err(rejection) => {
                Err(HttpError::api(ErrorCode::MalformedPayload, rejection.body_text()))
            }
        }
    }
}

/// The configured limit, carried in request extensions for the error message.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub u64);

/// 413 `miroir_payload_too_large`.
pub fn payload_too_large(limit: u64) -> HttpError {
    HttpError::api(
        ErrorCode::MiroirPayloadTooLarge,
        format!(
            "The provided payload reached the size limit. The maximum accepted payload size is \
             {limit} bytes."
        ),
    )
}

/// Parses a JSON body with Meilisearch's errors for a missing or malformed one.
pub fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, HttpError> {
    if let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        if !content_type.starts_with("application/json") {
            return Err(HttpError::api(
                ErrorCode::InvalidContentType,
                format!(
                    "The Content-Type `{content_type}` is invalid. Accepted values for the \
                     Content-Type header are: `application/json`"
                ),
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::api(ErrorCode::MissingPayload, "A json payload is missing."));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedPayload,
            format!("The json payload provided is malformed. `{e}`."),
        )
        .into()
    })
}
