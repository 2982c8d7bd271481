//! Change data capture: the per-index event log and how far each consumer of it got.

use async_trait::async_trait;

use crate::StoreResult;

/// Monotonic per-index cursors (a CDC sink records how far it delivered; its key is
/// `<sink>:<index uid>`).
#[async_trait]
pub trait CdcCursors: Send + Sync {
    /// The cursor of `index_uid`; 0 if never advanced.
    async fn cdc_cursor(&self, index_uid: &str) -> StoreResult<u64>;

    /// Moves the cursor of `index_uid` to `to`. Advancing to the current value is a no-op;
    /// moving it backwards is refused with `Conflict`. Returns the cursor after the call.
    async fn advance_cdc_cursor(&self, index_uid: &str, to: u64) -> StoreResult<u64>;
}

/// One change event as the log holds it: its index, its position in that index's log, and the
/// event itself (JSON, opaque to the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcEntry {
    /// The index the event is about.
    pub index_uid: String,
    /// Its position: per index, from 1, assigned by the store when appended, never reused.
    pub seq: u64,
    /// The serialized event.
    pub payload: Vec<u8>,
}

/// The change events, per index, in order. Any number of writers (gateway instances) append;
/// the store gives each event the next position of its index, so positions of an index are
/// unique and increasing even across writers; readers page through them.
#[async_trait]
pub trait CdcLog: Send + Sync {
    /// Appends `events` (index uid, serialized event; of one or several indexes) in one atomic
    /// step, all or none; returns the position given to each, in order. Positions follow every
    /// position ever given for the index, trimmed ones included.
    async fn append_cdc_entries(&self, events: &[(String, Vec<u8>)]) -> StoreResult<Vec<u64>>;

    /// At most `limit` entries of `index_uid` with a position above `after`, in order.
    async fn cdc_entries(
        &self,
        index_uid: &str,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<CdcEntry>>;

    /// The first position held for `index_uid` and the last one given; `None` when none is
    /// held.
    async fn cdc_span(&self, index_uid: &str) -> StoreResult<Option<(u64, u64)>>;

    /// The indexes with entries held, sorted (it may also name an index whose entries were all
    /// trimmed).
    async fn cdc_indexes(&self) -> StoreResult<Vec<String>>;

    /// Removes the entries of `index_uid` below position `below`; returns how many.
    async fn trim_cdc_entries(&self, index_uid: &str, below: u64) -> StoreResult<u64>;
}
