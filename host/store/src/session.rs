//! Read-your-writes sessions (`X-Miroir-Session`).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::StoreResult;

/// What a session pins: its latest write and the replica group that acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The Miroir task uid of the session's latest write.
    pub last_write_task: u64,
    /// The replica group that acknowledged that write.
    pub group: String,
}

/// How many live sessions a store keeps at most.
///
/// Eviction rule (both backends): when a `put_session` for a new id would leave more than
/// `max_sessions` live sessions, the sessions that expire soonest are dropped first. With one TTL
/// for every session that is the least recently written one. Expired sessions never count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// The bound on live sessions.
    pub max_sessions: u64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits { max_sessions: 100_000 }
    }
}

/// The session table.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores or replaces session `id` for `ttl`, evicting per [`SessionLimits`].
    async fn put_session(&self, id: &str, record: &SessionRecord, ttl: Duration)
        -> StoreResult<()>;

    /// The live session `id`; expired sessions are never returned.
    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;

    /// Forgets session `id`; returns whether it was live.
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;

    /// How many sessions are live (for `miroir_session_pinning_active_sessions`).
    async fn session_count(&self) -> StoreResult<u64>;
}
