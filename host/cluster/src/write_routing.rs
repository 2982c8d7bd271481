//! Write routing: which nodes receive which documents, and whether a write reached quorum.
//!
//! A write goes to every replica group; inside a group, to the RF owners of each document's
//! shard. [`plan_by_node`] turns the shard of every item into one list of items per target node,
//! so each node receives one batched request. [`QuorumReport::evaluate`] decides, from which
//! nodes accepted their part, whether every shard reached the write quorum (`write_quorum`
//! owners) in at least one group, and which groups missed an owner somewhere; [`missed_owners`]
//! lists the owners that missed a write, which get a repair record.

use std::collections::{BTreeMap, BTreeSet};

use miroir_types::{GroupId, NodeId, ShardId};

use crate::Assignment;

/// A majority of `replication_factor` owners: `floor(RF/2) + 1`.
pub fn quorum_size(replication_factor: usize) -> usize {
    replication_factor / 2 + 1
}

/// For each target node, the positions (in `shards`) of the items it must receive, in order.
///
/// `shards[i]` is the shard of item `i`. Every item goes to the owners of its shard in every
/// group, so with G groups and RF replicas each item appears in G × RF lists.
pub fn plan_by_node(assignment: &Assignment, shards: &[ShardId]) -> BTreeMap<NodeId, Vec<usize>> {
    // Resolve owners once per distinct shard; batches have many items per shard.
    let mut targets_of: BTreeMap<ShardId, Vec<NodeId>> = BTreeMap::new();
    let mut plan: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
    for (i, shard) in shards.iter().enumerate() {
        let targets = targets_of.entry(*shard).or_insert_with(|| {
            assignment
                .write_targets(*shard)
                .flat_map(|(_, owners)| owners.iter().cloned())
                .collect()
        });
        for node in targets.iter() {
            plan.entry(node.clone()).or_default().push(i);
        }
    }
    plan
}

/// Every node that owns at least one of `shards` in some group: the targets of a write touching
/// them. For a broadcast, pass every shard.
pub fn targets_of(assignment: &Assignment, shards: &BTreeSet<ShardId>) -> BTreeSet<NodeId> {
    shards
        .iter()
        .flat_map(|s| assignment.write_targets(*s).flat_map(|(_, owners)| owners.iter().cloned()))
        .collect()
}

/// The owners of `shards` (write targets, every group) that did not accept a write, with the
/// shards each of them missed.
pub fn missed_owners(
    assignment: &Assignment,
    shards: &BTreeSet<ShardId>,
    accepted: impl Fn(&NodeId) -> bool,
) -> BTreeMap<NodeId, BTreeSet<ShardId>> {
    let mut missed: BTreeMap<NodeId, BTreeSet<ShardId>> = BTreeMap::new();
    for shard in shards {
        for (_, owners) in assignment.write_targets(*shard) {
            for owner in owners.iter().filter(|n| !accepted(n)) {
                missed.entry(owner.clone()).or_default().insert(*shard);
            }
        }
    }
    missed
}

/// The outcome of a write's quorum check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumReport {
    /// Groups that missed quorum for at least one shard (answered in `X-Miroir-Degraded`).
    pub degraded_groups: Vec<GroupId>,
    /// Shards for which no group reached quorum: the write must fail (`miroir_no_quorum`).
    pub shards_without_quorum: Vec<ShardId>,
}

impl QuorumReport {
    /// Checks quorum for every shard in `shards`, given which nodes accepted their request: a
    /// shard reaches it when, in at least one group, `owners_needed` of its write targets (or
    /// all of them, when fewer) accepted. A group with an owner that did not accept is degraded.
    pub fn evaluate(
        assignment: &Assignment,
        owners_needed: usize,
        shards: &BTreeSet<ShardId>,
        accepted: impl Fn(&NodeId) -> bool,
    ) -> Self {
        let need = owners_needed.max(1);
        let mut degraded = BTreeSet::new();
        let mut without = Vec::new();
        for shard in shards {
            let mut any_group = false;
            for (group, owners) in assignment.write_targets(*shard) {
                let acks = owners.iter().filter(|n| accepted(n)).count();
                if acks >= need.min(owners.len()) {
                    any_group = true;
                }
                if acks < owners.len() {
                    degraded.insert(group.clone());
                }
            }
            if !any_group {
                without.push(*shard);
            }
        }
        QuorumReport {
            degraded_groups: degraded.into_iter().collect(),
            shards_without_quorum: without,
        }
    }

    /// Whether every shard reached quorum in at least one group.
    pub fn succeeded(&self) -> bool {
        self.shards_without_quorum.is_empty()
    }

    /// The value of `X-Miroir-Degraded`, when some group missed quorum: `groups=a,b`.
    pub fn degraded_header(&self) -> Option<String> {
        if self.degraded_groups.is_empty() {
            return None;
        }
        let names: Vec<&str> = self.degraded_groups.iter().map(GroupId::as_str).collect();
        Some(format!("groups={}", names.join(",")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{shard_of, Topology};

    fn topology(groups: usize, per_group: usize, rf: usize) -> Topology {
        let pairs = (0..groups).flat_map(|g| {
            (0..per_group).map(move |n| {
                (
                    NodeId::new(format!("g{g}n{n}")).expect("id"),
                    GroupId::new(format!("g{g}")).expect("group"),
                )
            })
        });
        Topology::new(pairs, rf).expect("topology")
    }

    #[test]
    fn every_item_goes_to_exactly_its_owners_in_every_group() {
        let t = topology(2, 3, 2);
        let a = Assignment::new(&t, 16);
        let shards: Vec<ShardId> = (0..100).map(|i| shard_of(&format!("doc{i}"), 16)).collect();
        let plan = plan_by_node(&a, &shards);
        for (i, shard) in shards.iter().enumerate() {
            let holders: BTreeSet<&NodeId> =
                plan.iter().filter(|(_, items)| items.contains(&i)).map(|(n, _)| n).collect();
            let owners: BTreeSet<&NodeId> =
                a.write_targets(*shard).flat_map(|(_, o)| o.iter()).collect();
            assert_eq!(holders, owners);
            assert_eq!(holders.len(), 4, "2 groups x RF 2");
        }
    }

    #[test]
    fn quorum_is_floor_half_plus_one() {
        assert_eq!(quorum_size(1), 1);
        assert_eq!(quorum_size(2), 2);
        assert_eq!(quorum_size(3), 2);
    }

    #[test]
    fn write_fails_without_quorum_when_rf1_and_one_group() {
        let t = topology(1, 3, 1);
        let a = Assignment::new(&t, 64);
        let all: BTreeSet<ShardId> = (0..64).map(ShardId::new).collect();
        let down = NodeId::new("g0n1").expect("id");
        assert!(!a.shards_of(&down).is_empty(), "the node owns shards");
        let report = QuorumReport::evaluate(&a, 1, &all, |n| n != &down);
        assert!(!report.succeeded());
        assert_eq!(report.shards_without_quorum, a.shards_of(&down));
        assert_eq!(report.degraded_header().as_deref(), Some("groups=g0"));
    }

    #[test]
    fn one_owner_of_two_is_enough_with_quorum_one_and_the_other_missed_it() {
        let t = topology(1, 3, 2);
        let a = Assignment::new(&t, 16);
        let all: BTreeSet<ShardId> = (0..16).map(ShardId::new).collect();
        let down = NodeId::new("g0n2").expect("id");
        let one = QuorumReport::evaluate(&a, 1, &all, |n| n != &down);
        assert!(one.succeeded());
        assert_eq!(one.degraded_header().as_deref(), Some("groups=g0"));
        let majority = QuorumReport::evaluate(&a, quorum_size(2), &all, |n| n != &down);
        assert_eq!(majority.shards_without_quorum, a.shards_of(&down));
        let missed = missed_owners(&a, &all, |n| n != &down);
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[&down].iter().copied().collect::<Vec<_>>(), a.shards_of(&down));
    }

    #[test]
    fn another_group_saves_the_write_and_is_reported_degraded() {
        let t = topology(2, 2, 1);
        let a = Assignment::new(&t, 8);
        let all: BTreeSet<ShardId> = (0..8).map(ShardId::new).collect();
        let down = NodeId::new("g1n0").expect("id");
        let report = QuorumReport::evaluate(&a, 1, &all, |n| n != &down);
        assert!(report.succeeded());
        assert_eq!(report.degraded_groups, vec![GroupId::new("g1").expect("group")]);
    }
}
