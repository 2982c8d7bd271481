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

/// The owners of every shard of an index, in every group, for one topology and shard count.
#[derive(Debug, Clone)]
pub struct Assignment {
    shards: u32,
    /// `owners[group][shard]` = the RF owners, best score first.
    owners: Vec<(GroupId, Vec<Vec<NodeId>>)>,
}

impl Assignment {
    /// Compute the owners of shards `0..shards` in every group of `topology`.
    pub fn new(topology: &Topology, shards: u32) -> Self {
        let rf = topology.replication_factor();
        let owners = topology
            .groups()
            .iter()
            .map(|group| {
                let per_shard = (0..shards)
                    .map(|s| {
                        let shard = ShardId::new(s);
                        let mut ranked: Vec<(u64, &NodeId)> =
                            group.nodes.iter().map(|n| (rendezvous_score(shard, n), n)).collect();
                        ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
                        ranked.into_iter().take(rf).map(|(_, n)| n.clone()).collect()
                    })
                    .collect();
                (group.id.clone(), per_shard)
            })
            .collect();
        Self { shards, owners }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The RF owners of `shard` inside `group`.
    pub fn owners(&self, group: &GroupId, shard: ShardId) -> &[NodeId] {
        self.owners
            .iter()
            .find(|(g, _)| g == group)
            .and_then(|(_, per_shard)| per_shard.get(shard.get() as usize))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Where a write of `shard` goes: for every group, its RF owners.
    pub fn write_targets(&self, shard: ShardId) -> impl Iterator<Item = (&GroupId, &[NodeId])> {
        self.owners.iter().filter_map(move |(g, per_shard)| {
            per_shard.get(shard.get() as usize).map(|owners| (g, owners.as_slice()))
        })
    }

    /// The shards `node` owns inside its group.
    pub fn shards_of(&self, node: &NodeId) -> Vec<ShardId> {
        self.owners
            .iter()
            .flat_map(|(_, per_shard)| per_shard.iter().enumerate())
            .filter(|(_, owners)| owners.contains(node))
            .map(|(s, _)| ShardId::new(s as u32))
            .collect()
    }
}

#[cfg(test)]
#[path = "assignment_tests.rs"]
mod tests;
