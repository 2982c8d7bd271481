//! Covering sets: for one search, one node per shard inside a group, each node asked once.

use std::collections::BTreeMap;

use miroir_types::{GroupId, NodeId, ShardId};

use crate::assignment::Assignment;

/// The nodes a search asks in one group, and the shards each one answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoveringSet {
    pub group: GroupId,
    /// Node → the shards it answers for in this search.
    pub nodes: BTreeMap<NodeId, Vec<ShardId>>,
    /// Shards no healthy replica could answer for.
    pub missing: Vec<ShardId>,
}

impl CoveringSet {
    /// Pick, for every shard, one healthy owner in `group`, rotating among replicas with
    /// `rotation` so that load spreads over them. A shard without a healthy owner is `missing`.
    pub fn build(
        assignment: &Assignment,
        group: &GroupId,
        rotation: usize,
        is_healthy: impl Fn(&NodeId) -> bool,
    ) -> Self {
        Self::build_avoiding(assignment, group, rotation, is_healthy, |_| false)
    }

    /// [`CoveringSet::build`], where an owner that `is_slow` is picked only when the shard
    /// has no other healthy owner (adaptive replica selection).
    pub fn build_avoiding(
        assignment: &Assignment,
        group: &GroupId,
        rotation: usize,
        is_healthy: impl Fn(&NodeId) -> bool,
        is_slow: impl Fn(&NodeId) -> bool,
    ) -> Self {
        let mut nodes: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
        let mut missing = Vec::new();
        for s in 0..assignment.shards() {
            let shard = ShardId::new(s);
            let owners = assignment.owners(group, shard);
            let mut healthy: Vec<&NodeId> = owners.iter().filter(|n| is_healthy(n)).collect();
            if healthy.is_empty() {
                missing.push(shard);
                continue;
            }
            if healthy.iter().any(|n| !is_slow(n)) {
                healthy.retain(|n| !is_slow(n));
            }
            let pick = pick_replica(&healthy, &nodes, rotation, shard);
            nodes.entry(pick.clone()).or_default().push(shard);
        }
        Self { group: group.clone(), nodes, missing }
    }

    /// Whether every shard has a node.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// One of `candidates` (not empty) for `shard`: a node already in `picked`, so a node holding
/// several shards is asked once, else the next one in `rotation` order, so load spreads over
/// the replicas.
pub(crate) fn pick_replica<'a, V>(
    candidates: &[&'a NodeId],
    picked: &BTreeMap<NodeId, V>,
    rotation: usize,
    shard: ShardId,
) -> &'a NodeId {
    candidates
        .iter()
        .find(|n| picked.contains_key(**n))
        .copied()
        .unwrap_or(candidates[(rotation + shard.get() as usize) % candidates.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn setup(size: usize, rf: usize) -> (Assignment, GroupId, Vec<NodeId>) {
        let g = GroupId::new("g").unwrap();
        let ns: Vec<NodeId> = (0..size).map(|i| NodeId::new(format!("n{i}")).unwrap()).collect();
        let t = Topology::new(ns.iter().map(|n| (n.clone(), g.clone())), rf).unwrap();
        (Assignment::new(&t, 64), g, ns)
    }

    #[test]
    fn covers_every_shard_once_with_owners_only() {
        let (a, g, _) = setup(4, 2);
        let set = CoveringSet::build(&a, &g, 0, |_| true);
        assert!(set.is_complete());
        let mut all: Vec<u32> = set.nodes.values().flatten().map(|s| s.get()).collect();
        all.sort();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
        for (node, shards) in &set.nodes {
            for s in shards {
                assert!(a.owners(&g, *s).contains(node));
            }
        }
    }

    #[test]
    fn avoids_unhealthy_nodes_and_reports_uncovered_shards() {
        let (a, g, ns) = setup(3, 2);
        let down = ns[0].clone();
        let set = CoveringSet::build(&a, &g, 1, |n| n != &down);
        assert!(set.is_complete(), "rf 2 survives one node down");
        assert!(!set.nodes.contains_key(&down));
        let (a1, g1, ns1) = setup(3, 1);
        let down = ns1[1].clone();
        let set = CoveringSet::build(&a1, &g1, 0, |n| n != &down);
        assert_eq!(set.missing, a1.shards_of(&down));
    }
}
