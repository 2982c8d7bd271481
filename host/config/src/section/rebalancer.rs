//! `rebalancer`: moving shards when the topology changes, and the settings drift check.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// The `rebalancer` section. Rebalancing and the drift check run on the leader only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RebalancerConfig {
    /// Documents copied per page when a shard moves. Default `1000`.
    pub batch_size: u32,
    /// Copies run at the same time (each copies the shards one new owner takes in one index).
    /// Default `2`.
    pub max_concurrent_shards: u32,
    /// Time between two comparisons of node settings. Default `"5m"`.
    pub drift_check_interval: HumanDuration,
}

impl Default for RebalancerConfig {
    fn default() -> Self {
        RebalancerConfig {
            batch_size: 1000,
            max_concurrent_shards: 2,
            drift_check_interval: HumanDuration::from_secs(300),
        }
    }
}

impl RebalancerConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.batch_size == 0 {
            report.push(
                "rebalancer.batch_size",
                "must be at least 1",
                "e.g. 1000 documents per page",
            );
        }
        if self.max_concurrent_shards == 0 {
            report.push("rebalancer.max_concurrent_shards", "must be at least 1", "e.g. 2");
        }
        if self.drift_check_interval.is_zero() {
            report.push("rebalancer.drift_check_interval", "must be longer than 0s", "e.g. \"5m\"");
        }
    }
}
