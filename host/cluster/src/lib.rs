//! Cluster logic: which nodes hold which shard, where a write goes, and which nodes a search asks.
//!
//! Placement is computed from the topology alone, so every Miroir instance reaches the same
//! answer without coordination. This crate owns the topology model, the shard function,
//! rendezvous assignment, covering sets, write routing and quorum ([`write_routing`]), node
//! health and stale replicas ([`ReadView`] ranks the owners a read asks), adaptive replica
//! selection and hedging ([`ReplicaLoad`]), the scatter engine with its failover for every read
//! ([`scatter()`], [`scatter_parts`] for federated search, [`scatter_each_shard`] for browsing,
//! [`scatter_group`] for stats; over a [`NodeTransport`]), the merge of node answers
//! ([`merge`]), and the pooled HTTP clients
//! Miroir uses to talk to its nodes ([`NodeClient`]). It does not own the
//! HTTP server nor what a route means: `miroir-http` decides what to send; this crate says where
//! and carries it.

mod assignment;
mod coverage;
mod covering;
mod fleet;
mod health;
mod in_turn;
pub mod merge;
mod node_body;
mod node_client;
mod node_timing;
mod read_plan;
mod read_view;
mod replica_load;
mod scatter;
mod stale;
mod topology;
pub mod trace_context;
mod whole_group;
pub mod write_routing;

pub use assignment::{rank_owners, rendezvous_score, shard_of, Assignment};
pub use coverage::{Coverage, DEGRADED_HEADER};
pub use covering::CoveringSet;
pub use fleet::{Fleet, FleetError, FleetNode, MovePhase, NodeState, Run, RunState, ShardMove};
pub use health::{HealthRegistry, HealthState, HealthThresholds, Transition};
pub use in_turn::{in_turn, InTurn, Turn};
pub use node_client::{
    for_shards, with_request, with_request_id, NodeAuth, NodeBody, NodeClient, NodeClients,
    NodeError, NodeResponse, REQUEST_ID_HEADER,
};
pub use node_timing::{observe_node_requests, route_of, NodeRequestObserver};
pub use read_plan::ReadPlan;
pub use read_view::{ReadTier, ReadView};
pub use replica_load::{HedgeCounts, HedgePolicy, InFlight, ReplicaLoad};
pub use scatter::{
    scatter, scatter_each_shard, scatter_parts, Gathered, GatheredParts, NodeFailure, NodeRequest,
    NodeTransport, ReadPart, Refused, Share, ShareRequest,
};
pub use stale::{is_stale_answer, ReadOutcome, StaleReplicas, STALE_FOR};
pub use topology::{Group, Topology, TopologyError};
pub use whole_group::{scatter_group, WholeGroup};
pub use write_routing::{missed_owners, quorum_size, QuorumReport};
