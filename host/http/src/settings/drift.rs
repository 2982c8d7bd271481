//! Settings drift: every node must hold the same settings for an index, or ranking scores stop
//! being comparable across shards. [`check_and_repair`] reads every node's settings of every
//! index, takes the settings most nodes agree on as the reference, and sends it to each node
//! that differs. It runs on the leader every `rebalancer.drift_check_interval`, for indexes
//! whose nodes have no task in flight.

use std::collections::BTreeMap;

use axum::http::Method;
use futures_util::future::join_all;
use miroir_cluster::{NodeAuth, NodeBody};
use miroir_types::NodeId;
use serde_json::Value;

use super::verify::canonical_hash;
use crate::convergence::{converge_node, settle_found};
use crate::AppState;

/// What the check found for one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDrift {
    /// The index.
    pub index: String,
    /// Nodes whose settings differed from the reference and were sent it, or that lacked the
    /// index and had it created.
    pub repaired: Vec<NodeId>,
    /// Why nothing could be repaired, when that is the case (no majority, no node answered).
    pub unresolved: Option<String>,
}

/// Checks every index known to the task store; returns the indexes that drifted.
#[tracing::instrument(name = "drift_check", skip_all)]
pub async fn check_and_repair(state: &AppState) -> Vec<IndexDrift> {
    let indexes = match state.catalog().list_indexes().await {
        Ok(indexes) => indexes,
        Err(error) => {
            tracing::warn!(%error, "drift check: cannot list indexes");
            return Vec::new();
        }
    };
    let mut drifted = Vec::new();
    for meta in indexes {
        if let Some(drift) = check_index(state, &meta.uid).await {
            drifted.push(drift);
        }
    }
    drifted
}

/// Checks one index; `None` when every node that answered holds the same settings, or when a
/// node still has tasks of the index to process (a change in flight is not drift).
pub async fn check_index(state: &AppState, uid: &str) -> Option<IndexDrift> {
    if busy(state, uid).await {
        tracing::debug!(index = %uid, "drift check skipped: node tasks in flight");
        return None;
    }
    let path = format!("/indexes/{uid}/settings");
    let clients = state.clients();
    let reads = clients.iter().filter(|c| state.health().is_available(c.id())).map(|c| {
        let path = path.clone();
        async move {
            let response = c.send(Method::GET, &path, None, NodeAuth::NodeKey).await.ok()?;
            if response.status == 404 {
                return Some((c.id().clone(), None));
            }
            response.is_success().then(|| (c.id().clone(), Some(response.json())))
        }
    });
    let mut settings: Vec<(NodeId, Value)> = Vec::new();
    let mut missing: Vec<NodeId> = Vec::new();
    for (node, value) in join_all(reads).await.into_iter().flatten() {
        match value {
            Some(value) => settings.push((node, value)),
            None => missing.push(node),
        }
    }
    let created = create_missing(state, uid, &missing, !settings.is_empty()).await;
    let mut by_hash: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, value)) in settings.iter().enumerate() {
        by_hash.entry(canonical_hash(value)).or_default().push(i);
    }
    if by_hash.len() <= 1 {
        return (!created.is_empty()).then(|| IndexDrift {
            index: uid.to_owned(),
            repaired: created,
            unresolved: None,
        });
    }
    let mut groups: Vec<&Vec<usize>> = by_hash.values().collect();
    groups.sort_by_key(|members| std::cmp::Reverse(members.len()));
    if groups[0].len() == groups[1].len() {
        tracing::warn!(index = %uid, "node settings diverge with no majority; not repaired");
        return Some(IndexDrift {
            index: uid.to_owned(),
            repaired: created,
            unresolved: Some("no majority among the nodes' settings".into()),
        });
    }
    let reference = &settings[groups[0][0]].1;
    let body = serde_json::to_vec(reference).unwrap_or_default();
    let divergent: Vec<&NodeId> =
        groups[1..].iter().flat_map(|members| members.iter().map(|&i| &settings[i].0)).collect();
    let mut repaired = created;
    for node in divergent {
        let Ok(client) = state.client(node) else { continue };
        let sent = client
            .send(Method::PATCH, &path, Some(NodeBody::json(body.clone())), NodeAuth::NodeKey)
            .await;
        match sent {
            Ok(response) if response.is_success() => {
                tracing::warn!(index = %uid, %node, "node settings drifted; repair sent");
                repaired.push(node.clone());
            }
            Ok(response) => tracing::warn!(index = %uid, %node, status = response.status,
                "node settings drifted; the repair was refused"),
            Err(error) => tracing::warn!(index = %uid, %node, %error,
                "node settings drifted; the repair could not be sent"),
        }
    }
    Some(IndexDrift { index: uid.to_owned(), repaired, unresolved: None })
}

/// Creates the index on `missing` nodes (they answered `index_not_found`), with the settings
/// the other nodes hold, when some node holds it (`held_elsewhere`); returns the nodes done.
async fn create_missing(
    state: &AppState,
    uid: &str,
    missing: &[NodeId],
    held_elsewhere: bool,
) -> Vec<NodeId> {
    if missing.is_empty() || !held_elsewhere {
        return Vec::new();
    }
    let meta = match state.store().get_index(uid).await {
        Ok(Some(meta)) => meta,
        _ => return Vec::new(),
    };
    let mut created = Vec::new();
    for node in missing {
        match converge_node(state, node, &meta).await {
            Ok(found) => {
                tracing::warn!(index = %uid, %node, "a node lacked the index; created there");
                settle_found(state, node, uid, found).await;
                created.push(node.clone());
            }
            Err(reason) => {
                tracing::warn!(index = %uid, %node, reason, "a node lacks the index; not created")
            }
        }
    }
    created
}

/// Whether some node has an enqueued or processing task of `uid` (or does not answer).
async fn busy(state: &AppState, uid: &str) -> bool {
    let path = format!("/tasks?indexUids={uid}&statuses=enqueued,processing&limit=1");
    let clients = state.clients();
    let reads = clients.iter().filter(|c| state.health().is_available(c.id())).map(|c| {
        let path = path.clone();
        async move {
            match c.send(Method::GET, &path, None, NodeAuth::NodeKey).await {
                Ok(response) if response.is_success() => {
                    response.json()["total"].as_u64().unwrap_or(1) > 0
                }
                _ => true,
            }
        }
    });
    join_all(reads).await.into_iter().any(|busy| busy)
}
