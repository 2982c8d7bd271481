//! `nodes`: the Meilisearch fleet.

use miroir_types::{GroupId, NodeId};
use serde::{Deserialize, Serialize};

/// One entry of `nodes`: a Meilisearch process Miroir routes to.
///
/// Checks that look at the whole list (duplicates, group sizes) are in `crate::validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Stable id, never reused: shard assignment hashes it. Required.
    pub id: NodeId,
    /// Base URL, e.g. `http://meili-0:7700`. Required.
    pub address: String,
    /// The replica group the node belongs to. Every node needs one.
    #[serde(default)]
    pub replica_group: Option<GroupId>,
}
