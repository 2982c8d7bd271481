//! The task store's contract: traits, records and leader election, but no backend.
//!
//! This crate owns what Miroir keeps in its task store — the task sequence and task records,
//! index metadata, idempotency keys, sessions, the background job queue, rebalance state,
//! leases with fencing tokens, plugin key-value data and CDC cursors — as one [`TaskStore`]
//! trait made of one trait per table. It also owns leader election over a lease
//! ([`leader`]), the metrics hook every backend reports to ([`metrics`]), and, behind the
//! `conformance` feature, the one test suite every backend must pass ([`conformance`]).
//!
//! It does not own a backend: SQLite lives in `miroir-store-sqlite`, Redis in
//! `miroir-store-redis`, so this crate pulls in neither rusqlite nor redis.

mod cdc;
pub mod clock;
mod error;
pub mod holder;
mod idempotency;
mod index;
mod job;
pub mod leader;
mod lease;
pub mod metrics;
mod plugin_kv;
mod rebalance;
mod session;
mod store;
mod task;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use cdc::{CdcCursors, CdcEntry, CdcLog};
pub use error::{StoreError, StoreResult};
pub use holder::{holder_instance, LeaseHolder};
pub use idempotency::{IdempotencyRecord, IdempotencyStore, IDEMPOTENCY_TTL};
pub use index::{IndexCatalog, IndexMeta};
pub use job::{Job, JobDepth, JobQueue, JobState};
pub use leader::{LeaderConfig, LeaderElector, LeaderHandle, LeaderState};
pub use lease::{Fence, Lease, LeaseOutcome, LeaseStore};
pub use metrics::{NoMetrics, SharedMetrics, StoreMetrics};
pub use plugin_kv::PluginKv;
pub use rebalance::{RebalanceStore, Versioned};
pub use session::{SessionLimits, SessionRecord, SessionStore};
pub use store::TaskStore;
pub use task::{ChangeEntry, NewTask, TaskFilter, TaskLog, TaskPage, TaskRecord, TaskStatus};

/// Every store trait, for `use miroir_store::prelude::*;` where methods are called.
pub mod prelude {
    pub use crate::{
        CdcCursors, CdcLog, IdempotencyStore, IndexCatalog, JobQueue, LeaseStore, PluginKv,
        RebalanceStore, SessionStore, TaskLog, TaskStore,
    };
}
