//! The live fleet: every node Miroir ever knew with its state, and the rebalance run that moves
//! shards after a change. The fleet is one document in the task store, saved with a version;
//! every instance follows it and derives its topology and placement from it ([`Fleet::topology`],
//! [`Fleet::assignment`]).
//!
//! Placement during a run. A node `joining` takes part in the *target* placement only, a node
//! `draining` in the *current* one only; `active` nodes in both. For each (group, shard) whose
//! owners differ between the two, the run records a [`ShardMove`] with a phase:
//!
//! | phase      | reads ask  | writes go to |
//! |------------|------------|--------------|
//! | `pending`  | old owners | old ∪ new    |
//! | `copying`  | old owners | old ∪ new    |
//! | `switched` | new owners | old ∪ new    |
//! | `cleaned`  | new owners | new owners   |
//!
//! Writes reach the new owners before the copy starts, so a copied shard is complete when the
//! copy ends; reads switch only after the copy was verified; the old owners stop receiving writes
//! before they delete their copy. A search asks each node for exactly the shards it answers for
//! (`_miroir_shard` filter), so a node holding a shard it does not answer for counts nothing twice.

use std::collections::BTreeSet;

use miroir_types::{GroupId, NodeId, ShardId};
use serde::{Deserialize, Serialize};

use crate::assignment::{rank_owners, Assignment};
use crate::topology::{Topology, TopologyError};

/// Where a node is in its life. Ids are never reused: a removed node stays listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeState {
    /// Holds and serves its shards.
    Active,
    /// Receiving its shards; not read until they are copied.
    Joining,
    /// Giving its shards away; read until they are copied elsewhere.
    Draining,
    /// Holds nothing any more; waits for `DELETE /_miroir/nodes/{id}`.
    Drained,
    /// Gone for good.
    Removed,
}

impl NodeState {
    /// The state's name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Active => "active",
            NodeState::Joining => "joining",
            NodeState::Draining => "draining",
            NodeState::Drained => "drained",
            NodeState::Removed => "removed",
        }
    }

    /// Whether the node holds data reads may use before the run switches them.
    fn in_current(self) -> bool {
        matches!(self, NodeState::Active | NodeState::Draining)
    }

    /// Whether the node holds data once the run completes.
    fn in_target(self) -> bool {
        matches!(self, NodeState::Active | NodeState::Joining)
    }

    /// Whether Miroir talks to the node (writes, broadcasts, probes).
    pub fn is_member(self) -> bool {
        self.in_current() || self.in_target()
    }
}

/// One node of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetNode {
    pub id: NodeId,
    /// Base URL, e.g. `http://meili-0:7700`.
    pub address: String,
    pub replica_group: GroupId,
    pub state: NodeState,
    /// Removed without a drain (`?force=true`): never used as a copy source, removed (not
    /// drained) when the run ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

/// Where one shard's move is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MovePhase {
    Pending,
    Copying,
    Switched,
    Cleaned,
}

/// One shard of one group changing owners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardMove {
    pub group: GroupId,
    pub shard: u32,
    /// The owners before the run.
    pub from: Vec<NodeId>,
    /// The owners after the run.
    pub to: Vec<NodeId>,
    pub phase: MovePhase,
    #[serde(default)]
    pub documents_copied: u64,
}

impl ShardMove {
    /// The owners reads ask in this phase.
    pub fn read_owners(&self) -> &[NodeId] {
        if self.phase >= MovePhase::Switched {
            &self.to
        } else {
            &self.from
        }
    }

    /// The owners writes go to in this phase (best first, without repeats).
    pub fn write_owners(&self) -> Vec<NodeId> {
        if self.phase == MovePhase::Cleaned {
            return self.to.clone();
        }
        let mut owners = self.to.clone();
        owners.extend(self.from.iter().filter(|n| !self.to.contains(n)).cloned());
        owners
    }

    /// The new owners that must receive a copy.
    pub fn receivers(&self) -> Vec<NodeId> {
        self.to.iter().filter(|n| !self.from.contains(n)).cloned().collect()
    }

    /// The old owners that must delete their copy at the end.
    pub fn leavers(&self) -> Vec<NodeId> {
        self.from.iter().filter(|n| !self.to.contains(n)).cloned().collect()
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunState {
    Running,
    Paused,
    Succeeded,
    Failed,
}

/// A rebalance run: the moves one fleet change needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: u64,
    pub state: RunState,
    /// What started it, e.g. `add node meili-3`.
    pub reason: String,
    /// Shards `0..shards` were planned (the largest shard count of any index at the start);
    /// shards above move nothing (an index that has them was created during the run, on the
    /// target owners).
    pub shards: u32,
    pub moves: Vec<ShardMove>,
    pub documents_copied: u64,
    /// Seconds spent copying shards (the run's fixed waits for instances to follow excluded).
    #[serde(default)]
    pub copy_seconds: f64,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Run {
    /// The move of `shard` in `group`, if it moves.
    pub fn move_of(&self, group: &GroupId, shard: u32) -> Option<&ShardMove> {
        self.moves.iter().find(|m| m.shard == shard && &m.group == group)
    }

    /// Moves that reached `phase` or later.
    pub fn count_at_least(&self, phase: MovePhase) -> usize {
        self.moves.iter().filter(|m| m.phase >= phase).count()
    }

    /// Whether the run is still changing placement (running or paused).
    pub fn is_open(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Paused)
    }
}

/// Why a fleet change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("node `{0}` already exists (ids are never reused)")]
    NodeExists(NodeId),
    #[error("node `{0}` is not in the fleet")]
    UnknownNode(NodeId),
    #[error("a rebalance is in progress (run {0}); wait for it to finish")]
    RunInProgress(u64),
    #[error("node `{node}` is {state}; {needed}")]
    WrongState { node: NodeId, state: &'static str, needed: &'static str },
    #[error("the fleet would have no node left in group `{0}` while other groups remain")]
    EmptyGroup(GroupId),
    #[error("the fleet would have no active node left")]
    NoNodeLeft,
    #[error(transparent)]
    Topology(#[from] TopologyError),
}

/// The live fleet. `version` is the stored version (see [`crate::Fleet`] docs above).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    #[serde(skip)]
    pub version: u64,
    pub replication_factor: usize,
    pub nodes: Vec<FleetNode>,
    /// The open run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
    /// The id the next run takes.
    #[serde(default = "first_run_id")]
    pub next_run_id: u64,
}

fn first_run_id() -> u64 {
    1
}

impl Fleet {
    /// The fleet the configuration seeds: every node active.
    pub fn seed(
        nodes: impl IntoIterator<Item = (NodeId, String, GroupId)>,
        replication_factor: usize,
    ) -> Result<Self, FleetError> {
        let nodes: Vec<FleetNode> = nodes
            .into_iter()
            .map(|(id, address, replica_group)| FleetNode {
                id,
                address,
                replica_group,
                state: NodeState::Active,
                forced: false,
            })
            .collect();
        let fleet =
            Fleet { version: 0, replication_factor, nodes, run: None, next_run_id: first_run_id() };
        fleet.topology()?;
        Ok(fleet)
    }

    /// The node `id`, in any state.
    pub fn node(&self, id: &NodeId) -> Option<&FleetNode> {
        self.nodes.iter().find(|n| &n.id == id)
    }

    /// The nodes Miroir talks to: active, joining and draining.
    pub fn members(&self) -> impl Iterator<Item = &FleetNode> {
        self.nodes.iter().filter(|n| n.state.is_member())
    }

    /// The topology of the members (what reads, writes and broadcasts see).
    pub fn topology(&self) -> Result<Topology, TopologyError> {
        Topology::new_lenient(
            self.members().map(|n| (n.id.clone(), n.replica_group.clone())),
            self.replication_factor,
        )
    }

    /// The owners of every shard of an index with `shards` shards, as the open run places them.
    pub fn assignment(&self, topology: &Topology, shards: u32) -> Assignment {
        let rf = self.replication_factor;
        let owners = topology
            .groups()
            .iter()
            .map(|group| {
                let target: Vec<&NodeId> = self.in_group(&group.id, NodeState::in_target);
                // A node removed by force is dead: nothing is read from or written to it.
                let alive = |owners: Vec<NodeId>| -> Vec<NodeId> {
                    owners.into_iter().filter(|n| !self.is_forced(n)).collect()
                };
                let per_shard = (0..shards)
                    .map(|s| {
                        let moving = self.run.as_ref().and_then(|r| r.move_of(&group.id, s));
                        match moving {
                            Some(m) => (alive(m.read_owners().to_vec()), alive(m.write_owners())),
                            None => {
                                let owners = rank_owners(ShardId::new(s), &target, rf);
                                (owners.clone(), owners)
                            }
                        }
                    })
                    .collect();
                (group.id.clone(), per_shard)
            })
            .collect();
        Assignment::from_owners(shards, owners)
    }

    fn in_group(&self, group: &GroupId, keep: fn(NodeState) -> bool) -> Vec<&NodeId> {
        self.nodes
            .iter()
            .filter(|n| &n.replica_group == group && keep(n.state))
            .map(|n| &n.id)
            .collect()
    }

    /// The moves from the current placement to the target one, for shards `0..shards`.
    pub fn plan_moves(&self, shards: u32) -> Vec<ShardMove> {
        let rf = self.replication_factor;
        let groups: BTreeSet<&GroupId> = self.members().map(|n| &n.replica_group).collect();
        let mut moves = Vec::new();
        for group in groups {
            let current = self.in_group(group, NodeState::in_current);
            let target = self.in_group(group, NodeState::in_target);
            for s in 0..shards {
                let from = rank_owners(ShardId::new(s), &current, rf);
                let to = rank_owners(ShardId::new(s), &target, rf);
                let same: BTreeSet<&NodeId> = from.iter().collect();
                if to.len() != from.len() || !to.iter().all(|n| same.contains(n)) {
                    moves.push(ShardMove {
                        group: group.clone(),
                        shard: s,
                        from,
                        to,
                        phase: MovePhase::Pending,
                        documents_copied: 0,
                    });
                }
            }
        }
        moves
    }

    fn open_run_id(&self) -> Option<u64> {
        self.run.as_ref().filter(|r| r.is_open()).map(|r| r.id)
    }

    fn refuse_during_run(&self) -> Result<(), FleetError> {
        match self.open_run_id() {
            Some(id) => Err(FleetError::RunInProgress(id)),
            None => Ok(()),
        }
    }

    /// Adds a node, `joining`. The caller then starts a run ([`Fleet::start_run`]).
    pub fn add_node(
        &mut self,
        id: NodeId,
        address: String,
        replica_group: GroupId,
    ) -> Result<(), FleetError> {
        self.refuse_during_run()?;
        if self.node(&id).is_some() {
            return Err(FleetError::NodeExists(id));
        }
        self.nodes.push(FleetNode {
            id,
            address,
            replica_group,
            state: NodeState::Joining,
            forced: false,
        });
        Ok(())
    }

    /// Starts draining an active node. With `forced`, the node is dead: its copies are not used
    /// as a source, and it is removed when the run ends.
    pub fn drain_node(&mut self, id: &NodeId, forced: bool) -> Result<(), FleetError> {
        self.refuse_during_run()?;
        let group = {
            let node = self.node(id).ok_or_else(|| FleetError::UnknownNode(id.clone()))?;
            if node.state != NodeState::Active {
                return Err(FleetError::WrongState {
                    node: id.clone(),
                    state: node.state.as_str(),
                    needed: "only an active node can be drained",
                });
            }
            node.replica_group.clone()
        };
        let left_in_group = self
            .nodes
            .iter()
            .filter(|n| n.replica_group == group && n.state == NodeState::Active && &n.id != id)
            .count();
        let left = self.nodes.iter().filter(|n| n.state.in_target() && &n.id != id).count();
        if left == 0 {
            return Err(FleetError::NoNodeLeft);
        }
        let other_groups = self.members().any(|n| n.replica_group != group && n.state.in_target());
        if left_in_group == 0 && other_groups {
            return Err(FleetError::EmptyGroup(group));
        }
        let node = self.nodes.iter_mut().find(|n| &n.id == id).expect("checked above");
        node.state = NodeState::Draining;
        node.forced = forced;
        Ok(())
    }

    /// Removes a drained node (or, with `force`, any node not taking part in an open run:
    /// an active one is drained first, from its replicas, and removed when the run ends).
    /// Returns whether a run is needed.
    pub fn remove_node(&mut self, id: &NodeId, force: bool) -> Result<bool, FleetError> {
        let state = self.node(id).ok_or_else(|| FleetError::UnknownNode(id.clone()))?.state;
        match state {
            NodeState::Drained => {
                self.set_state(id, NodeState::Removed);
                Ok(false)
            }
            NodeState::Removed => Err(FleetError::WrongState {
                node: id.clone(),
                state: state.as_str(),
                needed: "it was already removed",
            }),
            NodeState::Active if force => {
                self.drain_node(id, true)?;
                Ok(true)
            }
            _ => Err(FleetError::WrongState {
                node: id.clone(),
                state: state.as_str(),
                needed: "drain it first (POST /_miroir/nodes/{id}/drain), or pass ?force=true \
                         for a dead node",
            }),
        }
    }

    fn set_state(&mut self, id: &NodeId, state: NodeState) {
        if let Some(node) = self.nodes.iter_mut().find(|n| &n.id == id) {
            node.state = state;
        }
    }

    /// Opens a run for the pending change, planning shards `0..shards`. With nothing to move,
    /// the change completes at once and no run is opened.
    pub fn start_run(&mut self, reason: String, shards: u32, now: String) -> Option<u64> {
        let moves = self.plan_moves(shards);
        if moves.is_empty() {
            self.complete_change();
            return None;
        }
        let id = self.next_run_id;
        self.next_run_id += 1;
        self.run = Some(Run {
            id,
            state: RunState::Running,
            reason,
            shards,
            moves,
            documents_copied: 0,
            copy_seconds: 0.0,
            started_at: now,
            finished_at: None,
            error: None,
        });
        Some(id)
    }

    /// Ends the change: joining nodes become active, draining ones drained (forced: removed).
    pub fn complete_change(&mut self) {
        for node in &mut self.nodes {
            node.state = match node.state {
                NodeState::Joining => NodeState::Active,
                NodeState::Draining if node.forced => NodeState::Removed,
                NodeState::Draining => NodeState::Drained,
                other => other,
            };
        }
    }

    /// Whether `node` was removed by force (dead).
    pub fn is_forced(&self, node: &NodeId) -> bool {
        self.node(node).is_some_and(|n| n.forced)
    }

    /// Whether `node` may serve as the source of a copy.
    pub fn is_usable_source(&self, node: &NodeId) -> bool {
        self.node(node).is_some_and(|n| n.state.in_current() && !n.forced)
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
