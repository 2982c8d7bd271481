//! Change-data-capture cursors: how far the CDC publisher got, per index.

use async_trait::async_trait;

use crate::StoreResult;

/// Monotonic per-index cursors.
#[async_trait]
pub trait CdcCursors: Send + Sync {
    /// The cursor of `index_uid`; 0 if never advanced.
    async fn cdc_cursor(&self, index_uid: &str) -> StoreResult<u64>;

    /// Moves the cursor of `index_uid` to `to`. Advancing to the current value is a no-op;
    /// moving it backwards is refused with `Conflict`. Returns the cursor after the call.
    async fn advance_cdc_cursor(&self, index_uid: &str, to: u64) -> StoreResult<u64>;
}
