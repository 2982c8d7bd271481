//! `Idempotency-Key`: a retried write returns the task its first attempt created, with no new
//! node work; the same key with another body is refused (409 `miroir_idempotency_key_reused`).
//!
//! The key is recorded once the write created its task, so two attempts racing with one key
//! may both reach the nodes; the store keeps the first, and both get a task that did the work.

use axum::http::{HeaderMap, Method, Uri};
use miroir_store::{IdempotencyRecord, TaskRecord};
use miroir_types::ErrorCode;
use sha2::{Digest, Sha256};

use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The longest key accepted, in bytes: enough for a UUID or a hash with a prefix.
pub const MAX_KEY_BYTES: usize = 256;

/// What a write should do about its idempotency key.
#[derive(Debug)]
pub enum Begin {
    /// Do the work; record the key afterwards if there is one.
    Proceed(Option<Pending>),
    /// A retry: answer with the original task.
    Replay(Box<TaskRecord>),
}

/// A key to record once the task exists.
#[derive(Debug)]
pub struct Pending {
    key: String,
    hash: String,
}

fn request_hash(method: &Method, uri: &Uri, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(uri.path_and_query().map(|p| p.as_str()).unwrap_or_default().as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// Looks the request's key up, if it has one.
pub async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> HttpResult<Begin> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(Begin::Proceed(None));
    };
    let key = valid_key(value.as_bytes())?;
    let hash = request_hash(method, uri, body);
    match state.store().get_idempotency(key).await? {
        None => Ok(Begin::Proceed(Some(Pending { key: key.to_owned(), hash }))),
        Some(record) if record.body_hash == hash => {
            let task = state.store().get_task(record.task_uid).await?.ok_or_else(|| {
                HttpError::Internal(format!(
                    "idempotency key points at missing task {}",
                    record.task_uid
                ))
            })?;
            Ok(Begin::Replay(Box::new(task)))
        }
        Some(_) => Err(HttpError::api(
            ErrorCode::MiroirIdempotencyKeyReused,
            format!("The idempotency key `{key}` was already used with a different request body."),
        )),
    }
}

/// The key in `value`, or `miroir_invalid_idempotency_key`: a key that is empty, too long or not
/// printable ASCII is refused rather than ignored, so a client never believes a write is
/// protected when it is not.
fn valid_key(value: &[u8]) -> HttpResult<&str> {
    let printable = value.iter().all(|b| (b' '..=b'~').contains(b));
    match std::str::from_utf8(value) {
        Ok(key) if printable && !key.trim().is_empty() && key.len() <= MAX_KEY_BYTES => Ok(key),
        _ => Err(HttpError::api(
            ErrorCode::MiroirInvalidIdempotencyKey,
            format!(
                "The `Idempotency-Key` header must be 1 to {MAX_KEY_BYTES} printable ASCII \
                 characters."
            ),
        )),
    }
}

impl Pending {
    /// Records the key for `task_uid`.
    pub async fn finish(self, state: &AppState, task_uid: u64) -> HttpResult<()> {
        let record = IdempotencyRecord { body_hash: self.hash, task_uid };
        let ttl = state.config().idempotency.ttl.get();
        state.store().put_idempotency_if_absent(&self.key, &record, ttl).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_short_printable_ascii() {
        assert_eq!(valid_key(b"write-1").expect("valid"), "write-1");
        assert!(valid_key(&[b'k'; MAX_KEY_BYTES]).is_ok());
        for bad in [&b""[..], b"  ", "clé".as_bytes(), b"a\tb", &[b'k'; MAX_KEY_BYTES + 1]] {
            let error = valid_key(bad).expect_err("refused");
            assert!(
                matches!(&error, HttpError::Api(e) if e.code() == ErrorCode::MiroirInvalidIdempotencyKey),
                "{error:?}"
            );
        }
    }
}
