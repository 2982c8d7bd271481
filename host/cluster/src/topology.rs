//! The topology: nodes arranged in replica groups, and the replication factor inside each group.

use std::collections::BTreeMap;

use miroir_types::{GroupId, NodeId};

/// One replica group: the nodes that together hold every shard RF times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    /// The group's nodes, sorted by id.
    pub nodes: Vec<NodeId>,
}

/// Why a topology cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("the topology has no node")]
    Empty,
    #[error("node `{0}` appears twice")]
    DuplicateNode(NodeId),
    #[error(
        "replication factor {rf} is larger than replica group `{group}`, which has {size} node(s)"
    )]
    GroupTooSmall { group: GroupId, size: usize, rf: usize },
    #[error("replication factor must be at least 1")]
    ZeroReplication,
}

/// Nodes in replica groups, with the replication factor. Groups are ordered by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    groups: Vec<Group>,
    replication_factor: usize,
}

impl Topology {
    /// Build a topology from `(node, group)` pairs.
    pub fn new(
        nodes: impl IntoIterator<Item = (NodeId, GroupId)>,
        replication_factor: usize,
    ) -> Result<Self, TopologyError> {
        Self::build(nodes, replication_factor, true)
    }

    /// A topology where a group may have fewer nodes than the replication factor (a group
    /// being built up or drained one node at a time holds fewer replicas meanwhile).
    pub fn new_lenient(
        nodes: impl IntoIterator<Item = (NodeId, GroupId)>,
        replication_factor: usize,
    ) -> Result<Self, TopologyError> {
        Self::build(nodes, replication_factor, false)
    }

    fn build(
        nodes: impl IntoIterator<Item = (NodeId, GroupId)>,
        replication_factor: usize,
        full_groups: bool,
    ) -> Result<Self, TopologyError> {
        if replication_factor == 0 {
            return Err(TopologyError::ZeroReplication);
        }
        let mut by_group: BTreeMap<GroupId, Vec<NodeId>> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (node, group) in nodes {
            if !seen.insert(node.clone()) {
                return Err(TopologyError::DuplicateNode(node));
            }
            by_group.entry(group).or_default().push(node);
        }
        if by_group.is_empty() {
            return Err(TopologyError::Empty);
        }
        let mut groups = Vec::with_capacity(by_group.len());
        for (id, mut nodes) in by_group {
            if full_groups && nodes.len() < replication_factor {
                return Err(TopologyError::GroupTooSmall {
                    group: id,
                    size: nodes.len(),
                    rf: replication_factor,
                });
            }
            nodes.sort();
            groups.push(Group { id, nodes });
        }
        Ok(Self { groups, replication_factor })
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn group(&self, id: &GroupId) -> Option<&Group> {
        self.groups.iter().find(|g| &g.id == id)
    }

    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// Every node of every group.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeId> {
        self.groups.iter().flat_map(|g| g.nodes.iter())
    }

    /// The group a node belongs to.
    pub fn group_of(&self, node: &NodeId) -> Option<&GroupId> {
        self.groups.iter().find(|g| g.nodes.contains(node)).map(|g| &g.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str) -> NodeId {
        NodeId::new(id).unwrap()
    }
    fn g(id: &str) -> GroupId {
        GroupId::new(id).unwrap()
    }

    #[test]
    fn groups_are_built_and_checked() {
        let t = Topology::new([(n("b"), g("1")), (n("a"), g("1")), (n("c"), g("2"))], 1).unwrap();
        assert_eq!(t.groups().len(), 2);
        assert_eq!(t.groups()[0].nodes, vec![n("a"), n("b")]);
        assert_eq!(t.group_of(&n("c")), Some(&g("2")));
        assert_eq!(
            Topology::new([(n("a"), g("1")), (n("c"), g("2"))], 2).unwrap_err(),
            TopologyError::GroupTooSmall { group: g("1"), size: 1, rf: 2 }
        );
        assert_eq!(
            Topology::new([(n("a"), g("1")), (n("a"), g("2"))], 1).unwrap_err(),
            TopologyError::DuplicateNode(n("a"))
        );
        assert_eq!(Topology::new([], 1).unwrap_err(), TopologyError::Empty);
        assert_eq!(
            Topology::new([(n("a"), g("1"))], 0).unwrap_err(),
            TopologyError::ZeroReplication
        );
    }
}
