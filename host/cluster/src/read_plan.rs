//! Which nodes a read asks: the replica group (round-robin, skipping groups that cannot cover
//! every shard), its covering set, and — when a node fails, times out or answers stale — the
//! replacements for its shards, first in the same group and then in the others. Nodes are
//! judged through a [`ReadView`]: healthy before degraded, stale only when nothing else is
//! left, down never.

use std::collections::{BTreeMap, BTreeSet};

use miroir_types::{GroupId, NodeId, ShardId};

use crate::assignment::Assignment;
use crate::covering::{pick_replica, CoveringSet};
use crate::read_view::{ReadTier, ReadView};
use crate::topology::Topology;

/// The plan of one read: the groups in the order they are tried and the first covering set.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// The chosen group first, then the other groups in topology order after it.
    pub group_order: Vec<GroupId>,
    /// The first round: one available node per shard in the chosen group.
    pub covering: CoveringSet,
    rotation: usize,
    /// Nodes clearly slower than the fastest of their group (adaptive replica selection):
    /// asked only for shards no other usable owner can answer.
    slow: BTreeSet<NodeId>,
}

impl ReadPlan {
    /// Choose the group for a read. A `pinned` group (session read-your-writes) is used as is.
    /// Otherwise, starting at `rotation`, the first group whose healthy nodes cover every shard;
    /// failing that, the first whose usable (neither down nor stale) nodes do; failing that, the
    /// rotation's group, with its uncovered shards left for [`ReadPlan::replacements`].
    pub fn new(
        topology: &Topology,
        assignment: &Assignment,
        view: &ReadView<'_>,
        rotation: usize,
        pinned: Option<&GroupId>,
    ) -> Self {
        let groups: Vec<&GroupId> = topology.groups().iter().map(|g| &g.id).collect();
        let start = pinned
            .and_then(|p| groups.iter().position(|g| *g == p))
            .unwrap_or(rotation % groups.len().max(1));
        let rotated: Vec<GroupId> =
            (0..groups.len()).map(|i| groups[(start + i) % groups.len()].clone()).collect();
        let slow: BTreeSet<NodeId> = match view.load {
            Some(load) => topology
                .groups()
                .iter()
                .flat_map(|g| {
                    let fast = load.preferred(g.nodes.iter());
                    g.nodes.iter().filter(move |n| !fast.contains(n)).cloned()
                })
                .collect(),
            None => BTreeSet::new(),
        };
        let build = |group: &GroupId, usable: &dyn Fn(&NodeId) -> bool| {
            CoveringSet::build_avoiding(assignment, group, rotation, usable, |n| slow.contains(n))
        };
        let chosen = if pinned.is_some() {
            Some(build(&rotated[0], &|n| view.is_usable(n)))
        } else {
            let healthy = |n: &NodeId| view.is_preferred(n);
            let available = |n: &NodeId| view.is_usable(n);
            rotated.iter().map(|g| build(g, &healthy)).find(CoveringSet::is_complete).or_else(
                || rotated.iter().map(|g| build(g, &available)).find(CoveringSet::is_complete),
            )
        };
        let covering = chosen.unwrap_or_else(|| build(&rotated[0], &|n| view.is_usable(n)));
        let group_order = std::iter::once(covering.group.clone())
            .chain(rotated.into_iter().filter(|g| *g != covering.group))
            .collect();
        ReadPlan { group_order, covering, rotation, slow }
    }

    /// Nodes to ask for `shards` (whose node failed, or which had none), never one of
    /// `excluded` (the nodes that failed this read) nor one that is down: an owner in the
    /// chosen group first, then in the next groups; a stale owner only when no group has
    /// another one left. A node already picked for another of these shards is preferred, so
    /// each node is asked once. Returns the picks and the shards no node is left for.
    pub fn replacements(
        &self,
        assignment: &Assignment,
        view: &ReadView<'_>,
        shards: &BTreeSet<ShardId>,
        excluded: &BTreeSet<NodeId>,
    ) -> (BTreeMap<NodeId, Vec<ShardId>>, BTreeSet<ShardId>) {
        let mut picks: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
        let mut left = BTreeSet::new();
        for &shard in shards {
            // The first group, in order, with a usable owner of the shard; else with a stale one.
            let in_group =
                |group: &GroupId, accept: &dyn Fn(ReadTier) -> bool| -> Option<Vec<&NodeId>> {
                    let owners: Vec<(ReadTier, &NodeId)> = assignment
                        .owners(group, shard)
                        .iter()
                        .filter(|n| !excluded.contains(*n))
                        .filter_map(|n| view.tier(n).filter(|t| accept(*t)).map(|t| (t, n)))
                        .collect();
                    let best = owners.iter().map(|(t, _)| *t).min()?;
                    let mut best: Vec<&NodeId> =
                        owners.into_iter().filter(|(t, _)| *t == best).map(|(_, n)| n).collect();
                    if best.iter().any(|n| !self.slow.contains(*n)) {
                        best.retain(|n| !self.slow.contains(*n));
                    }
                    Some(best)
                };
            let usable: Option<Vec<&NodeId>> = self
                .group_order
                .iter()
                .find_map(|g| in_group(g, &|t| t != ReadTier::Stale))
                .or_else(|| self.group_order.iter().find_map(|g| in_group(g, &|_| true)));
            let Some(owners) = usable else {
                left.insert(shard);
                continue;
            };
            let pick = pick_replica(&owners, &picks, self.rotation, shard);
            picks.entry(pick.clone()).or_default().push(shard);
        }
        (picks, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{HealthRegistry, HealthThresholds};
    use crate::stale::StaleReplicas;

    /// `groups` groups of `per_group` nodes named `g<G>-n<N>`.
    fn cluster(groups: usize, per_group: usize, rf: usize) -> (Topology, Assignment, Nodes) {
        let mut nodes = Vec::new();
        for g in 0..groups {
            for n in 0..per_group {
                nodes.push((
                    NodeId::new(format!("g{g}-n{n}")).unwrap(),
                    GroupId::new(format!("g{g}")).unwrap(),
                ));
            }
        }
        let topology = Topology::new(nodes, rf).unwrap();
        let assignment = Assignment::new(&topology, 32);
        let health = HealthRegistry::new(
            topology.nodes(),
            HealthThresholds { degraded_after: 1, down_after: 2, recover_after: 1 },
        );
        (topology, assignment, Nodes { health, stale: StaleReplicas::default() })
    }

    /// What the tests change about the nodes: health and stale marks.
    struct Nodes {
        health: HealthRegistry,
        stale: StaleReplicas,
    }

    impl Nodes {
        fn view(&self) -> ReadView<'_> {
            ReadView::new(&self.health, &self.stale, "products")
        }

        fn record(&self, node: &NodeId, ok: bool) {
            self.health.record(node, ok);
        }
    }

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    fn take_down(health: &Nodes, name: &str) {
        health.record(&node(name), false);
        health.record(&node(name), false);
    }

    #[test]
    fn round_robin_over_groups_when_all_are_healthy() {
        let (t, a, h) = cluster(2, 2, 1);
        let first = ReadPlan::new(&t, &a, &h.view(), 0, None);
        let second = ReadPlan::new(&t, &a, &h.view(), 1, None);
        assert_ne!(first.covering.group, second.covering.group);
        assert!(first.covering.is_complete() && second.covering.is_complete());
        assert_eq!(first.group_order.len(), 2);
    }

    #[test]
    fn a_group_with_a_down_node_is_skipped() {
        let (t, a, h) = cluster(2, 2, 1);
        take_down(&h, "g0-n1");
        for rotation in 0..4 {
            let plan = ReadPlan::new(&t, &a, &h.view(), rotation, None);
            assert_eq!(plan.covering.group.as_str(), "g1", "rotation {rotation}");
            assert!(plan.covering.is_complete());
        }
    }

    #[test]
    fn healthy_groups_are_preferred_to_degraded_ones() {
        let (t, a, h) = cluster(2, 2, 1);
        h.record(&node("g1-n0"), false);
        for rotation in 0..4 {
            assert_eq!(
                ReadPlan::new(&t, &a, &h.view(), rotation, None).covering.group.as_str(),
                "g0"
            );
        }
        h.record(&node("g0-n0"), false);
        let groups: BTreeSet<String> = (0..4)
            .map(|r| ReadPlan::new(&t, &a, &h.view(), r, None).covering.group.as_str().to_owned())
            .collect();
        assert_eq!(groups.len(), 2, "both degraded: round-robin again");
    }

    #[test]
    fn a_pinned_group_is_kept_even_when_incomplete() {
        let (t, a, h) = cluster(2, 2, 1);
        take_down(&h, "g1-n0");
        let g1 = GroupId::new("g1").unwrap();
        let plan = ReadPlan::new(&t, &a, &h.view(), 0, Some(&g1));
        assert_eq!(plan.covering.group, g1);
        assert_eq!(plan.covering.missing, a.shards_of(&node("g1-n0")));
        assert_eq!(plan.group_order[1].as_str(), "g0");
    }

    #[test]
    fn replacements_try_the_same_group_first_then_the_next() {
        let (t, a, h) = cluster(2, 3, 2);
        let plan = ReadPlan::new(&t, &a, &h.view(), 0, None);
        let group = plan.covering.group.clone();
        let (failed, shards) = plan.covering.nodes.iter().next().unwrap();
        let shards: BTreeSet<ShardId> = shards.iter().copied().collect();
        let tried: BTreeSet<NodeId> = [failed.clone()].into_iter().collect();
        let (picks, left) = plan.replacements(&a, &h.view(), &shards, &tried);
        assert!(left.is_empty());
        for (n, s) in &picks {
            assert_ne!(n, failed);
            assert_eq!(t.group_of(n), Some(&group), "RF 2: the other replica in the same group");
            for shard in s {
                assert!(a.owners(&group, *shard).contains(n));
            }
        }
        // Every node of the chosen group tried: the other group answers.
        let all_of_group: BTreeSet<NodeId> =
            t.group(&group).unwrap().nodes.iter().cloned().collect();
        let (picks, left) = plan.replacements(&a, &h.view(), &shards, &all_of_group);
        assert!(left.is_empty());
        assert!(picks.keys().all(|n| t.group_of(n) != Some(&group)));
        let covered: BTreeSet<ShardId> = picks.values().flatten().copied().collect();
        assert_eq!(covered, shards);
    }

    #[test]
    fn shards_without_any_available_owner_are_left() {
        let (t, a, h) = cluster(1, 3, 1);
        let plan = ReadPlan::new(&t, &a, &h.view(), 0, None);
        let failed = node("g0-n1");
        let shards: BTreeSet<ShardId> = a.shards_of(&failed).into_iter().collect();
        let tried: BTreeSet<NodeId> = [failed].into_iter().collect();
        let (picks, left) = plan.replacements(&a, &h.view(), &shards, &tried);
        assert!(picks.is_empty());
        assert_eq!(left, shards);
    }

    #[test]
    fn stale_owners_are_replaced_by_another_group_and_asked_last() {
        let (t, a, h) = cluster(2, 2, 1);
        let stale = node("g0-n0");
        h.stale.mark(&stale, "products");
        for rotation in 0..4 {
            let plan = ReadPlan::new(&t, &a, &h.view(), rotation, None);
            assert_eq!(plan.covering.group.as_str(), "g1", "rotation {rotation}");
        }
        // Its shards, when g1's owner failed too: the stale node is the last resort.
        let plan = ReadPlan::new(&t, &a, &h.view(), 0, None);
        let shards: BTreeSet<ShardId> = a.shards_of(&stale).into_iter().collect();
        let g1_owners: BTreeSet<NodeId> = shards
            .iter()
            .flat_map(|s| a.owners(&GroupId::new("g1").unwrap(), *s).iter().cloned())
            .collect();
        let (picks, left) = plan.replacements(&a, &h.view(), &shards, &BTreeSet::new());
        assert!(left.is_empty() && !picks.contains_key(&stale), "{picks:?}");
        let (picks, left) = plan.replacements(&a, &h.view(), &shards, &g1_owners);
        assert!(left.is_empty());
        assert_eq!(picks.keys().collect::<Vec<_>>(), vec![&stale]);
        let mut tried = g1_owners;
        tried.insert(stale);
        let (_, left) = plan.replacements(&a, &h.view(), &shards, &tried);
        assert_eq!(left, shards);
    }
}
