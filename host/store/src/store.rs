//! The task-store trait: every table together, as one backend implements it.

use async_trait::async_trait;

use crate::{
    CdcCursors, CdcLog, IdempotencyStore, IndexCatalog, JobQueue, LeaseStore, PluginKv,
    RebalanceStore, SessionStore, StoreResult, TaskLog,
};

/// Everything Miroir keeps in its task store. A backend implements every part; callers that
/// need only one part can ask for just that trait.
#[async_trait]
pub trait TaskStore:
    TaskLog
    + IndexCatalog
    + IdempotencyStore
    + SessionStore
    + JobQueue
    + RebalanceStore
    + LeaseStore
    + PluginKv
    + CdcCursors
    + CdcLog
    + Send
    + Sync
    + 'static
{
    /// The backend's name as metrics label it: `"sqlite"` or `"redis"`.
    fn backend(&self) -> &'static str;

    /// Deletes expired idempotency keys and sessions that the backend does not expire by itself;
    /// returns how many. Reads never return expired records whether or not this ran.
    async fn purge_expired(&self) -> StoreResult<u64>;
}
