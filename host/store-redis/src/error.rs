//! How Redis errors become [`StoreError`]s.

use miroir_store::StoreError;
use redis::{ErrorKind, RedisError};

/// Maps a redis error: protocol and type errors are `Corrupt` (the key holds something this
/// version did not write), everything else — I/O, timeouts, refused connections, server
/// errors such as `LOADING` — is `Unavailable`.
pub(crate) fn redis_err(e: RedisError) -> StoreError {
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// Decodes a stored JSON document.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("stored {what}: {e}")))
}

/// Encodes a document for storage.
pub(crate) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("{what}: {e}")))
}

/// Parses an integer the store wrote as text.
pub(crate) fn parse_u64(what: &str, text: &str) -> Result<u64, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("stored {what} `{text}` is not a number")))
}
