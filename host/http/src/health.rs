//! The health prober: every `health.interval`, each node's `GET /health` feeds
//! [`AppState::health`]. Searches choose groups and replicas from those states and writes skip
//! nodes that are down (see [`crate::fanout`]).
//!
//! A probe may take `health.timeout`, or longer for a node whose recent answers were slow (see
//! [`miroir_cluster::HealthRegistry::probe_timeout`], at most `scatter.node_timeout`), and a node
//! that answers real requests is alive whatever its probes say: a busy node is slow, not down.

use std::time::Duration;

use axum::http::Method;
use futures_util::future::join_all;
pub use miroir_cluster::HealthState;
use miroir_cluster::{NodeAuth, NodeError};
use miroir_types::NodeId;
use tokio::task::JoinHandle;

use crate::AppState;

/// Starts probing every node in the background until the handle is aborted.
pub fn spawn_prober(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(state.config().health.interval.get());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            probe_all(&state).await;
            crate::convergence::sync_holds(&state).await;
        }
    })
}

/// Probes every node once, in parallel, and records the outcomes.
pub async fn probe_all(state: &AppState) {
    let base = state.config().health.timeout.get();
    let cap = state.config().scatter.node_timeout.get();
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let probes = nodes.into_iter().map(|node| async move {
        let timeout = state.health().probe_timeout(&node, base, cap);
        let ok = probe(state, &node, timeout).await;
        (node, ok)
    });
    for (node, ok) in join_all(probes).await {
        if let Some(change) = state.health().record(&node, ok) {
            match change.to {
                HealthState::Healthy => {
                    tracing::info!(%node, from = %change.from, "node is healthy again")
                }
                HealthState::Degraded => {
                    tracing::warn!(%node, "node missed a health probe: degraded")
                }
                HealthState::Down => {
                    tracing::warn!(%node, "node is down: requests are routed around it")
                }
            }
        }
    }
}

/// Whether `node` answers `GET /health` with `{"status": "available"}` in time.
async fn probe(state: &AppState, node: &NodeId, timeout: Duration) -> bool {
    let Ok(client) = state.client(node) else { return false };
    match client.send_with_timeout(Method::GET, "/health", None, NodeAuth::NodeKey, timeout).await {
        Ok(response) => response.is_success() && response.json()["status"] == "available",
        Err(NodeError::Timeout { .. }) => {
            state.health().timed_out(node, timeout);
            false
        }
        Err(_) => {
            state.health().refused(node);
            false
        }
    }
}
