//! What a read knows of the nodes it may ask: their health and whether they are stale for the
//! index read. Every read path (search, facet search, similar, federated search, browse,
//! stats, get by id) orders the owners of a shard with [`ReadView::rank`], so they all prefer
//! and avoid the same nodes.

use miroir_types::NodeId;

use crate::health::{HealthRegistry, HealthState};
use crate::replica_load::ReplicaLoad;
use crate::stale::StaleReplicas;

/// How much a read wants a node, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadTier {
    /// Healthy and not stale for the index.
    Healthy,
    /// Missed probes but not down; not stale.
    Degraded,
    /// Answered recently that it does not hold Miroir's copy of the index: asked only when no
    /// other owner is left (its mark may be out of date).
    Stale,
}

/// The nodes as one read of `index` sees them.
#[derive(Debug, Clone, Copy)]
pub struct ReadView<'a> {
    /// Node health from the probes.
    pub health: &'a HealthRegistry,
    /// Recent stale answers.
    pub stale: &'a StaleReplicas,
    /// The index read.
    pub index: &'a str,
    /// The nodes' recent speed and load, for adaptive replica selection and hedging; without
    /// it replicas are rotated and nothing is hedged.
    pub load: Option<&'a ReplicaLoad>,
}

impl<'a> ReadView<'a> {
    /// A view of `index`.
    pub fn new(health: &'a HealthRegistry, stale: &'a StaleReplicas, index: &'a str) -> Self {
        ReadView { health, stale, index, load: None }
    }

    /// The view, choosing replicas by speed and hedging slow ones as `load` says.
    pub fn with_load(mut self, load: &'a ReplicaLoad) -> Self {
        self.load = Some(load);
        self
    }

    /// The tier of `node`; `None` when it is down, or held stale for the index (its copy was
    /// created again after it was lost: it would answer for documents it lacks), never asked by
    /// a read.
    pub fn tier(&self, node: &NodeId) -> Option<ReadTier> {
        if self.stale.is_held(node, self.index) {
            return None;
        }
        match self.health.state(node) {
            HealthState::Down => None,
            _ if self.stale.is_stale(node, self.index) => Some(ReadTier::Stale),
            HealthState::Healthy => Some(ReadTier::Healthy),
            HealthState::Degraded => Some(ReadTier::Degraded),
        }
    }

    /// `owners` in the order a read asks them: healthy, then degraded, then stale; down and
    /// held nodes left out. The order among nodes of one tier is kept.
    pub fn rank<'n>(&self, owners: impl IntoIterator<Item = &'n NodeId>) -> Vec<NodeId> {
        let mut ranked: Vec<(ReadTier, NodeId)> = owners
            .into_iter()
            .filter_map(|node| self.tier(node).map(|tier| (tier, node.clone())))
            .collect();
        ranked.sort_by_key(|(tier, _)| *tier);
        let mut out: Vec<NodeId> = Vec::with_capacity(ranked.len());
        for (_, node) in ranked {
            if !out.contains(&node) {
                out.push(node);
            }
        }
        out
    }

    /// Whether a read picks `node` first: healthy and not stale.
    pub fn is_preferred(&self, node: &NodeId) -> bool {
        self.tier(node) == Some(ReadTier::Healthy)
    }

    /// Whether a read may plan `node`: not down and not stale.
    pub fn is_usable(&self, node: &NodeId) -> bool {
        matches!(self.tier(node), Some(ReadTier::Healthy | ReadTier::Degraded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthThresholds;

    #[test]
    fn healthy_then_degraded_then_stale_never_down() {
        let ids: Vec<NodeId> = (0..4).map(|i| NodeId::new(format!("n{i}")).unwrap()).collect();
        let health = HealthRegistry::new(
            &ids,
            HealthThresholds { degraded_after: 1, down_after: 2, recover_after: 1 },
        );
        let stale = StaleReplicas::default();
        health.record(&ids[0], false); // degraded
        health.record(&ids[1], false);
        health.record(&ids[1], false); // down
        stale.mark(&ids[2], "books");
        let view = ReadView::new(&health, &stale, "books");
        assert_eq!(view.rank(&ids), vec![ids[3].clone(), ids[0].clone(), ids[2].clone()]);
        assert!(view.is_usable(&ids[0]) && !view.is_usable(&ids[2]) && !view.is_usable(&ids[1]));
        assert!(view.is_preferred(&ids[3]) && !view.is_preferred(&ids[0]));
        let other = ReadView::new(&health, &stale, "movies");
        assert_eq!(other.tier(&ids[2]), Some(ReadTier::Healthy), "stale for one index only");
        stale.hold(&ids[3], "books");
        assert_eq!(view.tier(&ids[3]), None, "a held node is never read");
        assert_eq!(other.tier(&ids[3]), Some(ReadTier::Healthy));
    }
}
