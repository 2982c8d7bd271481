//! Idempotency keys: a client's `Idempotency-Key` mapped to the task its first request created.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// How long idempotency keys live by default (24 h, as the specification requires).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a key remembers of its first request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// A hash of the first request's body, to tell a retry from a reuse of the key.
    pub body_hash: String,
    /// The Miroir task the first request created.
    pub task_uid: u64,
}

/// The idempotency-key table.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Stores `record` under `key` for `ttl` unless a live record exists. Returns `None` when
    /// stored, or the live record that was already there (left unchanged). Atomic: of two
    /// concurrent calls with one key, exactly one gets `None`.
    async fn put_idempotency_if_absent(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    /// The live record under `key`; expired records are never returned.
    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>>;

    /// How many live idempotency keys the store holds (`miroir_idempotency_cache_entries`).
    async fn idempotency_count(&self) -> StoreResult<u64>;
}
