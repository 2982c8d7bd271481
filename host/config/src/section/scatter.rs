//! `scatter`: how searches fan out to nodes.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// What a search answers when some shard has no replica that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableShardPolicy {
    /// Answer with the shards that did answer and say so in `X-Miroir-Degraded` (default).
    Partial,
    /// Answer 503 `miroir_shard_unavailable`.
    Error,
}

/// How a read chooses among the replicas of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaSelection {
    /// By recent answer time and outstanding requests: a replica clearly slower than the others
    /// is asked only now and then (default).
    Adaptive,
    /// In turn, whatever their speed.
    RoundRobin,
}

/// `scatter.hedging`: asking another replica when a node is slow to answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HedgingConfig {
    /// Whether reads hedge. Default `true`.
    pub enabled: bool,
    /// Extra node requests allowed, as a fraction of the requests reads send. Default `0.05`.
    pub budget: f64,
    /// The shortest wait before hedging, whatever the recent p95 answer time. Default `"1ms"`.
    pub min_delay: HumanDuration,
}

impl Default for HedgingConfig {
    fn default() -> Self {
        HedgingConfig { enabled: true, budget: 0.05, min_delay: HumanDuration::from_millis(1) }
    }
}

/// The `scatter` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScatterConfig {
    /// Time limit for one node's answer before trying another replica. Default `"5s"`.
    pub node_timeout: HumanDuration,
    /// `partial` (default) or `error`.
    pub unavailable_shard_policy: UnavailableShardPolicy,
    /// `adaptive` (default) or `round_robin`.
    pub replica_selection: ReplicaSelection,
    /// Hedged requests.
    pub hedging: HedgingConfig,
}

impl Default for ScatterConfig {
    fn default() -> Self {
        ScatterConfig {
            node_timeout: HumanDuration::from_secs(5),
            unavailable_shard_policy: UnavailableShardPolicy::Partial,
            replica_selection: ReplicaSelection::Adaptive,
            hedging: HedgingConfig::default(),
        }
    }
}

impl ScatterConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.node_timeout.is_zero() {
            report.push("scatter.node_timeout", "must be longer than 0s", "e.g. \"5s\"");
        }
        let budget = self.hedging.budget;
        if !(0.0..=1.0).contains(&budget) {
            report.push(
                "scatter.hedging.budget",
                format!("{budget} is not a fraction between 0 and 1"),
                "e.g. 0.05 for at most 5 % extra node requests",
            );
        }
        if self.hedging.min_delay >= self.node_timeout {
            report.push(
                "scatter.hedging.min_delay",
                format!(
                    "{} is not shorter than scatter.node_timeout ({})",
                    self.hedging.min_delay, self.node_timeout
                ),
                "a hedge must start before the node times out: e.g. \"1ms\"",
            );
        }
    }
}
