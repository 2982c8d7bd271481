//! The shard function and rendezvous (highest-random-weight) assignment of shards to nodes.
//!
//! `shard = xxh64(primary key as a string, seed 0) % S`. Inside each group, the owners of shard
//! `s` are the RF nodes with the highest `xxh64(s as 4 little-endian bytes ++ node id bytes,
//! seed 0)`, ties broken by node id. Adding a node to a group moves only the shards it now wins.

use miroir_types::{GroupId, NodeId, ShardId};
use xxhash_rust::xxh64::xxh64;

use crate::topology::Topology;

/// The shard of a document, from its primary key value as a string.
pub fn shard_of(primary_key: &str, shards: u32) -> ShardId {
    assert!(shards > 0, "an index has at least one shard");
    ShardId::new((xxh64(primary_key.as_bytes(), 0) % u64::from(shards)) as u32)
}

/// The rendezvous weight of `node` for `shard`.
pub fn rendezvous_score(shard: ShardId, node: &NodeId) -> u64 {
    let mut key = Vec::with_capacity(4 + node.as_str().len());
    key.extend_from_slice(&shard.get().to_le_bytes());
    key.extend_from_slice(node.as_str().as_bytes());
    xxh64(&key, 0)
}

/// The `rf` best of `nodes` for `shard` by rendezvous weight, best first (ties by node id).
pub fn rank_owners(shard: ShardId, nodes: &[&NodeId], rf: usize) -> Vec<NodeId> {
    let mut ranked: Vec<(u64, &NodeId)> =
        nodes.iter().map(|n| (rendezvous_score(shard, n), *n)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    ranked.into_iter().take(rf).map(|(_, n)| n.clone()).collect()
}

/// For each group, for each shard: (owners reads ask, owners writes go to).
pub type OwnersByGroup = Vec<(GroupId, Vec<(Vec<NodeId>, Vec<NodeId>)>)>;

/// The owners of one shard in one group: those reads ask, and those writes go to (the same
/// outside a rebalance; during one, a moving shard is written to its old and new owners).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShardOwners {
    read: Vec<NodeId>,
    write: Vec<NodeId>,
}

/// The owners of every shard of an index, in every group, for one topology and shard count.
#[derive(Debug, Clone)]
pub struct Assignment {
    shards: u32,
    /// `owners[group][shard]`, best score first.
    owners: Vec<(GroupId, Vec<ShardOwners>)>,
}

impl Assignment {
    /// Compute the owners of shards `0..shards` in every group of `topology`.
    pub fn new(topology: &Topology, shards: u32) -> Self {
        let rf = topology.replication_factor();
        let owners = topology
            .groups()
            .iter()
            .map(|group| {
                let nodes: Vec<&NodeId> = group.nodes.iter().collect();
                let per_shard = (0..shards)
                    .map(|s| {
                        let owners = rank_owners(ShardId::new(s), &nodes, rf);
                        (owners.clone(), owners)
                    })
                    .collect();
                (group.id.clone(), per_shard)
            })
            .collect();
        Self::from_owners(shards, owners)
    }

    /// An assignment from explicit `(read owners, write owners)` per group and shard.
    pub fn from_owners(shards: u32, owners: OwnersByGroup) -> Self {
        let owners = owners
            .into_iter()
            .map(|(group, per_shard)| {
                let per_shard = per_shard
                    .into_iter()
                    .map(|(read, write)| ShardOwners { read, write })
                    .collect();
                (group, per_shard)
            })
            .collect();
        Self { shards, owners }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    fn shard_owners(&self, group: &GroupId, shard: ShardId) -> Option<&ShardOwners> {
        self.owners
            .iter()
            .find(|(g, _)| g == group)
            .and_then(|(_, per_shard)| per_shard.get(shard.get() as usize))
    }

    /// The owners of `shard` inside `group` that reads ask.
    pub fn owners(&self, group: &GroupId, shard: ShardId) -> &[NodeId] {
        self.shard_owners(group, shard).map(|o| o.read.as_slice()).unwrap_or(&[])
    }

    /// Where a write of `shard` goes: for every group, the owners writes go to.
    pub fn write_targets(&self, shard: ShardId) -> impl Iterator<Item = (&GroupId, &[NodeId])> {
        self.owners.iter().filter_map(move |(g, per_shard)| {
            per_shard.get(shard.get() as usize).map(|owners| (g, owners.write.as_slice()))
        })
    }

    /// The shards `node` answers reads for inside its group.
    pub fn shards_of(&self, node: &NodeId) -> Vec<ShardId> {
        self.owners
            .iter()
            .flat_map(|(_, per_shard)| per_shard.iter().enumerate())
            .filter(|(_, owners)| owners.read.contains(node))
            .map(|(s, _)| ShardId::new(s as u32))
            .collect()
    }

    /// The shards `node` receives writes for inside its group.
    pub fn written_shards_of(&self, node: &NodeId) -> Vec<ShardId> {
        self.owners
            .iter()
            .flat_map(|(_, per_shard)| per_shard.iter().enumerate())
            .filter(|(_, owners)| owners.write.contains(node))
            .map(|(s, _)| ShardId::new(s as u32))
            .collect()
    }
}

#[cfg(test)]
#[path = "assignment_tests.rs"]
mod tests;
