//! Rebalance state: one opaque JSON document per run, written with compare-and-set.

use async_trait::async_trait;

use crate::{Fence, StoreResult};

/// A stored document with the version that guards it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// Starts at 1 and grows by one on every successful save.
    pub version: u64,
    /// The document.
    pub doc: serde_json::Value,
}

/// Rebalance runs' progress, so a new leader resumes where the old one stopped.
#[async_trait]
pub trait RebalanceStore: Send + Sync {
    /// The state of run `run_id`, if saved.
    async fn get_rebalance(&self, run_id: &str) -> StoreResult<Option<Versioned>>;

    /// Saves `doc` for `run_id` if its current version is `expected_version` (0: the run must not
    /// exist yet); returns the new version. `Conflict` on a version mismatch, or when a `fence`
    /// is given and its token is no longer the latest issued for its lease.
    async fn save_rebalance(
        &self,
        run_id: &str,
        expected_version: u64,
        doc: &serde_json::Value,
        fence: Option<&Fence>,
    ) -> StoreResult<u64>;

    /// The ids of every saved run, sorted.
    async fn list_rebalance_runs(&self) -> StoreResult<Vec<String>>;

    /// Deletes run `run_id`; returns whether it existed.
    async fn delete_rebalance(&self, run_id: &str) -> StoreResult<bool>;
}
