//! The one place errors become responses.
//!
//! Every handler and every layer returns [`HttpError`]; [`HttpError::into_response`] (the
//! "rescue" function) decides the status and body, in one ordered match. Errors Miroir decided
//! on are rendered as Meilisearch's error object, errors a node answered are passed through byte
//! for byte, and anything unexpected is logged once here and answered with a generic `internal`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use miroir_cluster::NodeError;
use miroir_store::StoreError;
use miroir_types::{ApiError, ChangeFeedError, ErrorCode, ForwardedError, HookError};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// An error Miroir decided on, with its Meilisearch code.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A node's error answer, forwarded unchanged.
    #[error(transparent)]
    Forwarded(#[from] ForwardedError),
    /// No node could serve a single-node read.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The task store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A hook on the request path (a plugin's `plan-search` or `merge-search`) failed or
    /// refused the request.
    #[error(transparent)]
    Hook(#[from] HookError),
    /// The change feed could not be read.
    #[error(transparent)]
    ChangeFeed(#[from] ChangeFeedError),
    /// A bug or an impossible state; the message goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HttpError {
    /// Shorthand for an [`ApiError`] with `code` and `message`.
    pub fn api(code: ErrorCode, message: impl Into<String>) -> Self {
        HttpError::Api(ApiError::new(code, message))
    }

    /// Whether this is `index_not_found`, decided by Miroir or answered by a node.
    pub fn is_index_not_found(&self) -> bool {
        match self {
            HttpError::Api(error) => error.code() == ErrorCode::IndexNotFound,
            HttpError::Forwarded(error) => error.code_name().as_deref() == Some("index_not_found"),
            _ => false,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            HttpError::Api(error) => (error.status(), error.to_body()),
            HttpError::Forwarded(error) => {
                let (status, body) = error.into_parts();
                (status, crate::bookkeeping::scrub_error_body(body))
            }
            HttpError::Node(error) => {
                tracing::warn!(%error, "no node answered");
                let api = ApiError::new(
                    ErrorCode::MiroirShardUnavailable,
                    format!("No replica could answer: {error}."),
                );
                (api.status(), api.to_body())
            }
            HttpError::Store(error) => {
                tracing::error!(%error, "task store failure");
                let api = ApiError::internal();
                (api.status(), api.to_body())
            }
            HttpError::Hook(HookError::Failed { plugin, message }) => {
                tracing::warn!(%plugin, %message, "a search hook failed");
                let api = ApiError::new(ErrorCode::MiroirPluginFailed, message);
                (api.status(), api.to_body())
            }
            HttpError::Hook(HookError::Rejected { status, code, message, .. }) => {
                // The plugin's own code, in Meilisearch's error shape.
                let body = serde_json::json!({
                    "message": message,
                    "code": code,
                    "type": "invalid_request",
                    "link": format!("https://docs.meilisearch.com/errors#{code}"),
                });
                let status = if (400..600).contains(&status) { status } else { 502 };
                (status, body.to_string().into_bytes())
            }
            HttpError::ChangeFeed(error) => {
                tracing::error!(%error, "change feed failure");
                let api = ApiError::internal();
                (api.status(), api.to_body())
            }
            HttpError::Internal(message) => {
                tracing::error!(%message, "internal error");
                let api = ApiError::internal();
                (api.status(), api.to_body())
            }
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The result type of handlers.
pub type HttpResult<T> = Result<T, HttpError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn miroir_errors_have_meilisearch_shape_and_status() {
        let response = HttpError::api(ErrorCode::MiroirNoQuorum, "no quorum").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["code"], "miroir_no_quorum");
        assert_eq!(json["type"], "system");
    }

    #[tokio::test]
    async fn forwarded_errors_pass_through_unchanged() {
        let raw = br#"{"message":"m","code":"invalid_search_filter","type":"invalid_request","link":"l"}"#;
        let response = HttpError::Forwarded(ForwardedError::new(400, raw.to_vec())).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        assert_eq!(&body[..], &raw[..]);
    }

    #[tokio::test]
    async fn hook_errors_are_meilisearch_shaped() {
        let failed = HookError::Failed { plugin: "p".into(), message: "plugin `p` trapped".into() };
        let response = HttpError::from(failed).into_response();
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["code"], "miroir_plugin_failed");
        let rejected = HookError::Rejected {
            plugin: "p".into(),
            status: 400,
            code: "invalid_search_vector".into(),
            message: "no vector".into(),
        };
        let response = HttpError::from(rejected).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["code"], "invalid_search_vector");
        assert_eq!(json["message"], "no vector");
        assert_eq!(json["type"], "invalid_request");
    }

    #[tokio::test]
    async fn store_failures_are_generic_internal_errors() {
        let response =
            HttpError::Store(StoreError::Corrupt("secret detail".into())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        assert!(!String::from_utf8_lossy(&body).contains("secret"));
    }
}
