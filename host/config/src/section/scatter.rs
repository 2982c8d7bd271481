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

/// The `scatter` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScatterConfig {
    /// Time limit for one node's answer before trying another replica. Default `"5s"`.
    pub node_timeout: HumanDuration,
    /// `partial` (default) or `error`.
    pub unavailable_shard_policy: UnavailableShardPolicy,
}

impl Default for ScatterConfig {
    fn default() -> Self {
        ScatterConfig {
            node_timeout: HumanDuration::from_secs(5),
            unavailable_shard_policy: UnavailableShardPolicy::Partial,
        }
    }
}

impl ScatterConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.node_timeout.is_zero() {
            report.push("scatter.node_timeout", "must be longer than 0s", "e.g. \"5s\"");
        }
    }
}
