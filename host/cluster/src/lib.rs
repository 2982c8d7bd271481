//! Cluster logic: which nodes hold which shard, where a write goes, and which nodes a search asks.
//!
//! Everything here is computed from the topology alone, so every Miroir instance reaches the same
//! answer without coordination. This crate owns the topology model, the shard function, rendezvous
//! assignment and covering sets. It does no I/O: node clients, health checks and the scatter-gather
//! live elsewhere and call into it.

mod assignment;
mod covering;
mod topology;

pub use assignment::{rendezvous_score, shard_of, Assignment};
pub use covering::CoveringSet;
pub use topology::{Group, Topology, TopologyError};
