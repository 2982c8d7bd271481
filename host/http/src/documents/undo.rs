//! A document write answered `503 miroir_no_quorum` (or refused by a node) leaves nothing the
//! client can see.
//!
//! Before sending, a write whose shards cannot reach quorum with the nodes the health probes
//! consider available is refused with nothing sent. When it fails after some nodes took their
//! part, the part they took is undone: an index this write created is deleted again on every
//! node (and forgotten), otherwise the batch's document ids are deleted from the nodes that may
//! have queued them. Nodes run an index's tasks in order, so the deletion lands after the
//! addition. A document the refused write would have replaced is deleted too, on those nodes:
//! the client, told the write failed, retries it to put the documents back.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use miroir_cluster::{NodeAuth, NodeBody, NodeError, QuorumReport};
use miroir_types::{ApiError, ErrorCode, NodeId, ShardId};

use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeCall, NodeOutcome, NodeStep};
use crate::AppState;

/// `miroir_no_quorum` unless every shard of `shards` can reach quorum in some group with the
/// nodes the health probes consider available: nothing is worth sending otherwise.
pub fn quorum_possible(
    state: &AppState,
    shard_count: u32,
    shards: &BTreeSet<ShardId>,
) -> HttpResult<()> {
    let assignment = state.assignment(shard_count);
    let report = QuorumReport::evaluate(&assignment, state.write_quorum_size(), shards, |node| {
        state.health().is_available(node)
    });
    if report.succeeded() {
        return Ok(());
    }
    let shards: Vec<String> =
        report.shards_without_quorum.iter().map(ToString::to_string).collect();
    Err(HttpError::Api(ApiError::new(
        ErrorCode::MiroirNoQuorum,
        format!(
            "No replica group can reach a write quorum for shard(s) {}: too many of their nodes \
             are down. Nothing was written.",
            shards.join(", ")
        ),
    )))
}

/// Whether `outcome` means the node may have queued the request: it accepted it, or the
/// answer was lost after the request left (a timeout).
fn may_have_queued(outcome: &NodeOutcome) -> bool {
    match outcome {
        Ok(response) => response.is_success(),
        Err(NodeError::Timeout { .. }) => true,
        Err(_) => false,
    }
}

/// Undoes a refused first write to `uid`, which created the index: forgets it and deletes it on
/// every node (the bookkeeping settings step created it on nodes the documents never reached).
pub async fn forget_created_index(state: &AppState, uid: &str) {
    if let Err(error) = state.store().delete_index(uid).await {
        tracing::warn!(%error, index = %uid, "cannot forget the index of a refused write");
    }
    state.read_catalog().forget(uid);
    state.convergence().forget_index(uid);
    let delete = NodeStep::bookkeeping(Method::DELETE, format!("/indexes/{uid}"), None);
    let outcomes =
        fanout::run(state, NodeAuth::NodeKey, fanout::broadcast(state, vec![delete])).await;
    let failed = outcomes.values().filter(|o| !matches!(o, Ok(r) if r.is_success())).count();
    if failed > 0 {
        tracing::warn!(index = %uid, nodes = failed, "a refused write's index could not be deleted everywhere");
    }
}

/// Deletes the refused batch's documents (`ids` by shard) from every node whose outcome says it
/// may have queued them.
pub async fn delete_refused_documents(
    state: &AppState,
    uid: &str,
    shard_count: u32,
    ids: &BTreeMap<ShardId, Vec<String>>,
    outcomes: &BTreeMap<NodeId, NodeOutcome>,
) {
    let assignment = state.assignment(shard_count);
    let mut per_node: BTreeMap<NodeId, Vec<&str>> = BTreeMap::new();
    for (shard, shard_ids) in ids {
        for (_, owners) in assignment.write_targets(*shard) {
            for owner in owners {
                if outcomes.get(owner).is_some_and(may_have_queued) {
                    per_node
                        .entry(owner.clone())
                        .or_default()
                        .extend(shard_ids.iter().map(String::as_str));
                }
            }
        }
    }
    let calls: Vec<NodeCall> = per_node
        .into_iter()
        .filter_map(|(node, ids)| {
            let body = serde_json::to_vec(&ids).ok()?;
            let step = NodeStep::bookkeeping(
                Method::POST,
                format!("/indexes/{uid}/documents/delete-batch"),
                Some(NodeBody::json(body)),
            );
            Some(NodeCall { node, steps: vec![step] })
        })
        .collect();
    if calls.is_empty() {
        return;
    }
    tracing::warn!(index = %uid, nodes = calls.len(), "undoing a write that missed quorum");
    let outcomes = fanout::run(state, NodeAuth::NodeKey, calls).await;
    for (node, outcome) in outcomes {
        if !matches!(&outcome, Ok(r) if r.is_success()) {
            tracing::warn!(%node, index = %uid, "cannot undo a write that missed quorum on this node");
        }
    }
}
