//! Error objects as the client sees them: Miroir's own, or a node's passed through.

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::ErrorCode;

/// An error Miroir decided on, rendered as Meilisearch's error object.
///
/// The JSON form is exactly `{"message", "code", "type", "link"}`, in that order, as Meilisearch
/// writes it; `code`, `type` and `link` all derive from the [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    /// An error with `code` and a human-readable `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }

    /// The code of the error.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The error object as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.message,
            "code": self.code.name(),
            "type": self.code.error_type().as_str(),
            "link": self.code.link(),
        })
    }

    /// The error object serialized as the bytes of a response body.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an error object of strings always serializes")
    }

    /// `index_not_found`, with Meilisearch's message.
    pub fn index_not_found(uid: impl fmt::Display) -> Self {
        ApiError::new(ErrorCode::IndexNotFound, format!("Index `{uid}` not found."))
    }

    /// `document_not_found`, with Meilisearch's message.
    pub fn document_not_found(id: impl fmt::Display) -> Self {
        ApiError::new(ErrorCode::DocumentNotFound, format!("Document `{id}` not found."))
    }

    /// `task_not_found`, with Meilisearch's message.
    pub fn task_not_found(uid: impl fmt::Display) -> Self {
        ApiError::new(ErrorCode::TaskNotFound, format!("Task `{uid}` not found."))
    }

    /// `missing_authorization_header`, with Meilisearch's message.
    pub fn missing_authorization_header() -> Self {
        ApiError::new(
            ErrorCode::MissingAuthorizationHeader,
            "The Authorization header is missing. It must use the bearer authorization method.",
        )
    }

    /// `invalid_api_key`, with Meilisearch's message.
    pub fn invalid_api_key() -> Self {
        ApiError::new(ErrorCode::InvalidApiKey, "The provided API key is invalid.")
    }

    /// `miroir_reserved_field` for a document that carries `field`.
    pub fn reserved_field(field: impl fmt::Display) -> Self {
        ApiError::new(
            ErrorCode::MiroirReservedField,
            format!(
                "Document field `{field}` is reserved: fields starting with `_miroir_` are used by \
                 Miroir for its own bookkeeping."
            ),
        )
    }

    /// `not_found` for a route Miroir does not serve.
    pub fn route_not_found(method: impl fmt::Display, path: impl fmt::Display) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("No route matches `{method} {path}`."))
    }

    /// `internal`, with a message that reveals nothing; the cause belongs in the log.
    pub fn internal() -> Self {
        ApiError::new(ErrorCode::Internal, "An internal error occurred.")
    }
}

impl Serialize for ApiError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut object = serializer.serialize_struct("ApiError", 4)?;
        object.serialize_field("message", &self.message)?;
        object.serialize_field("code", self.code.name())?;
        object.serialize_field("type", self.code.error_type().as_str())?;
        object.serialize_field("link", &self.code.link())?;
        object.end()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// An error a node answered, carried to the client unchanged: same status, same body bytes.
///
/// Miroir never rewrites a node's error object, so an SDK sees exactly what one node would have
/// told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedError {
    status: u16,
    body: Vec<u8>,
}

impl ForwardedError {
    /// A node's answer with HTTP `status` and the raw response `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        ForwardedError { status, body: body.into() }
    }

    /// The node's HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The node's response body, byte for byte.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The `code` field of the node's error object, when the body is one.
    pub fn code_name(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value.get("code")?.as_str().map(str::to_owned)
    }

    /// The status and body, taken apart.
    pub fn into_parts(self) -> (u16, Vec<u8>) {
        (self.status, self.body)
    }
}

impl fmt::Display for ForwardedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code_name() {
            Some(code) => write!(f, "node answered {} ({code})", self.status),
            None => write!(f, "node answered {}", self.status),
        }
    }
}

impl std::error::Error for ForwardedError {}

/// An error on its way to the client: either Miroir's own or a node's, passed through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorResponse {
    /// An error Miroir decided on.
    Miroir(ApiError),
    /// An error a node answered, forwarded unchanged.
    Forwarded(ForwardedError),
}

impl ErrorResponse {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ErrorResponse::Miroir(error) => error.status(),
            ErrorResponse::Forwarded(error) => error.status(),
        }
    }

    /// The response body (always a JSON error object for Miroir's own errors).
    pub fn body(&self) -> Vec<u8> {
        match self {
            ErrorResponse::Miroir(error) => error.to_body(),
            ErrorResponse::Forwarded(error) => error.body().to_vec(),
        }
    }
}

impl From<ApiError> for ErrorResponse {
    fn from(error: ApiError) -> Self {
        ErrorResponse::Miroir(error)
    }
}

impl From<ForwardedError> for ErrorResponse {
    fn from(error: ForwardedError) -> Self {
        ErrorResponse::Forwarded(error)
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorResponse::Miroir(error) => error.fmt(f),
            ErrorResponse::Forwarded(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ErrorResponse {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_meilisearch_fields_in_order() {
        let error = ApiError::index_not_found("nope");
        let json = error.to_json();
        let keys: Vec<_> = json.as_object().expect("an object").keys().cloned().collect();
        assert_eq!(keys, ["message", "code", "type", "link"]);
        assert_eq!(
            json,
            serde_json::json!({
                "message": "Index `nope` not found.",
                "code": "index_not_found",
                "type": "invalid_request",
                "link": "https://docs.meilisearch.com/errors#index_not_found",
            })
        );
        assert_eq!(error.status(), 404);
    }

    #[test]
    fn body_bytes_match_meilisearch_serialization() {
        let body = ApiError::task_not_found(99999999).to_body();
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"message":"Task `99999999` not found.","code":"task_not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#task_not_found"}"#
        );
    }

    #[test]
    fn serialize_and_to_json_agree_for_every_code() {
        for &code in ErrorCode::ALL {
            let error = ApiError::new(code, "m");
            let via_serde = serde_json::to_value(&error).expect("serializes");
            assert_eq!(via_serde, error.to_json());
            assert_eq!(via_serde["type"], code.error_type().as_str());
        }
    }

    #[test]
    fn meilisearch_messages_match_recordings() {
        assert_eq!(ApiError::document_not_found("nope").message(), "Document `nope` not found.");
        assert_eq!(
            ApiError::missing_authorization_header().code(),
            ErrorCode::MissingAuthorizationHeader
        );
        assert_eq!(ApiError::invalid_api_key().status(), 403);
        assert_eq!(ApiError::reserved_field("_miroir_shard").status(), 400);
        assert_eq!(ApiError::route_not_found("GET", "/nope").status(), 404);
        assert_eq!(ApiError::internal().status(), 500);
    }

    #[test]
    fn forwarded_error_keeps_status_and_bytes() {
        let body = br#"{"message":"Index `x` not found.","code":"index_not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#index_not_found"}"#;
        let error = ForwardedError::new(404, body.to_vec());
        assert_eq!(error.code_name().as_deref(), Some("index_not_found"));
        let response = ErrorResponse::from(error);
        assert_eq!(response.status(), 404);
        assert_eq!(response.body(), body.to_vec());
    }

    #[test]
    fn forwarded_error_without_json_body_has_no_code() {
        let error = ForwardedError::new(502, b"bad gateway".to_vec());
        assert_eq!(error.code_name(), None);
        assert_eq!(error.to_string(), "node answered 502");
        assert_eq!(error.into_parts(), (502, b"bad gateway".to_vec()));
    }

    #[test]
    fn miroir_error_response_renders_the_object() {
        let response = ErrorResponse::from(ApiError::new(ErrorCode::MiroirNoQuorum, "no quorum"));
        assert_eq!(response.status(), 503);
        let json: serde_json::Value = serde_json::from_slice(&response.body()).expect("json");
        assert_eq!(json["code"], "miroir_no_quorum");
        assert_eq!(json["type"], "system");
    }
}
