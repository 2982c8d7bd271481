//! Meilisearch's error object (`message`, `code`, `type`, `link`) and the status each code has.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// An error answered to a client, or stored in a failed task, in Meilisearch's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub error_type: &'static str,
    pub message: String,
}

impl ApiError {
    /// An error with the status and type Meilisearch gives `code`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        let (status, error_type) = status_and_type(code);
        Self { status, code: code.to_string(), error_type, message: message.into() }
    }

    pub fn index_not_found(uid: &str) -> Self {
        Self::new("index_not_found", format!("Index `{uid}` not found."))
    }

    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            "malformed_payload",
            format!("The json payload provided is malformed. `{detail}`."),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// The JSON object Meilisearch answers with.
    pub fn to_json(&self) -> Value {
        json!({
            "message": self.message,
            "code": self.code,
            "type": self.error_type,
            "link": format!("https://docs.meilisearch.com/errors#{}", self.code),
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.to_json())).into_response()
    }
}

/// Status and error type for a Meilisearch error code. Codes not listed are `400 invalid_request`,
/// which is what Meilisearch uses for every `invalid_*` and `missing_*` parameter code.
fn status_and_type(code: &str) -> (StatusCode, &'static str) {
    match code {
        "index_not_found" | "document_not_found" | "task_not_found" | "api_key_not_found"
        | "batch_not_found" => (StatusCode::NOT_FOUND, "invalid_request"),
        "index_already_exists" | "api_key_already_exists" => {
            (StatusCode::CONFLICT, "invalid_request")
        }
        "invalid_content_type" | "missing_content_type" => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request")
        }
        "payload_too_large" => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        "missing_authorization_header" => (StatusCode::UNAUTHORIZED, "auth"),
        "invalid_api_key" => (StatusCode::FORBIDDEN, "auth"),
        "internal" | "io_error" | "database_size_limit_reached" => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
        "no_space_left_on_device" | "too_many_open_files" => {
            (StatusCode::INTERNAL_SERVER_ERROR, "system")
        }
        "not_found" => (StatusCode::NOT_FOUND, "invalid_request"),
        _ => (StatusCode::BAD_REQUEST, "invalid_request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_get_meilisearch_status_and_type() {
        let cases = [
            ("index_not_found", 404, "invalid_request"),
            ("document_not_found", 404, "invalid_request"),
            ("task_not_found", 404, "invalid_request"),
            ("index_already_exists", 409, "invalid_request"),
            ("invalid_content_type", 415, "invalid_request"),
            ("missing_authorization_header", 401, "auth"),
            ("invalid_api_key", 403, "auth"),
            ("malformed_payload", 400, "invalid_request"),
            ("invalid_search_filter", 400, "invalid_request"),
            ("invalid_search_sort", 400, "invalid_request"),
            ("invalid_document_id", 400, "invalid_request"),
            ("missing_document_id", 400, "invalid_request"),
            ("index_primary_key_multiple_candidates_found", 400, "invalid_request"),
            ("internal", 500, "internal"),
        ];
        for (code, status, kind) in cases {
            let err = ApiError::new(code, "m");
            assert_eq!(err.status.as_u16(), status, "{code}");
            assert_eq!(err.error_type, kind, "{code}");
        }
    }

    #[test]
    fn error_object_has_the_four_fields() {
        let body = ApiError::index_not_found("movies").to_json();
        assert_eq!(body["message"], "Index `movies` not found.");
        assert_eq!(body["code"], "index_not_found");
        assert_eq!(body["type"], "invalid_request");
        assert_eq!(body["link"], "https://docs.meilisearch.com/errors#index_not_found");
    }
}
