//! Every node holds every index Miroir knows, with Miroir's bookkeeping settings.
//!
//! An index is created on every node at once, but a node may be down at that moment, or come
//! back later on an empty disk. Left alone, such a node gets the index from the next document
//! write, which Meilisearch auto-creates *bare*: no `_miroir_shard` filterable, none of the
//! client's settings, so every read restricted to its shards is refused. This module keeps the
//! nodes converged:
//!
//! - A creation (or its bookkeeping settings) that a node missed is recorded as **pending** for
//!   that `(node, index)`; a retry loop of this instance ([`RETRY_EVERY`]) creates the index
//!   there (primary key from the catalog) with the index's settings as the other nodes hold
//!   them, once the node answers.
//! - Before a document write reaches a node, [`ensure_on_nodes`] makes sure the node has the
//!   index with `_miroir_shard` filterable; a `(node, index)` found so is remembered as
//!   **verified** for [`VERIFIED_FOR`], so the common path costs a map lookup.
//! - The leader's drift check ([`crate::settings::drift`]) creates the index on nodes that
//!   answer `index_not_found`, with [`converge_node`].
//!
//! A node that lacked an index this instance did not record as pending had held it and lost it
//! (restarted empty), and a pending node may have missed documents written meanwhile: the index
//! is created there so writes land correctly, but the node is *held* stale for the index ([`miroir_cluster::StaleReplicas::hold`]) — reads go around it until it
//! is refilled, since it answers normally for documents it no longer has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;
use futures_util::future::join_all;
use miroir_cluster::{NodeAuth, NodeBody, NodeClient};
use miroir_store::IndexMeta;
use miroir_types::NodeId;
use serde_json::{json, Value};

use crate::bookkeeping::SHARD_FIELD;
use crate::AppState;

/// How long a node found holding an index with its bookkeeping settings is not asked again
/// before a write.
pub const VERIFIED_FOR: Duration = Duration::from_secs(5);

/// How often pending creations are retried.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

type Key = (NodeId, String);

/// What this instance knows of each `(node, index)`: verified, or pending a creation.
#[derive(Debug, Default)]
pub struct IndexConvergence {
    verified: Mutex<HashMap<Key, Instant>>,
    /// Pending pairs, with whether the node also missed documents of the index meanwhile.
    pending: Mutex<BTreeMap<Key, bool>>,
    retrying: AtomicBool,
    task_marks: Mutex<HashMap<NodeId, u64>>,
}

impl IndexConvergence {
    fn is_verified(&self, node: &NodeId, index: &str) -> bool {
        let verified = self.verified.lock().expect("verified lock");
        verified
            .get(&(node.clone(), index.to_owned()))
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn verify(&self, node: &NodeId, index: &str) {
        self.verified
            .lock()
            .expect("verified lock")
            .insert((node.clone(), index.to_owned()), Instant::now());
    }

    /// Records the task uid `node` gave a write; `true` when it is not above the last one seen:
    /// the node numbers its tasks from 0 again, so it restarted without its data, and what was
    /// verified of it no longer holds (it is forgotten).
    pub fn observe_task(&self, node: &NodeId, task_uid: u64) -> bool {
        let restarted = {
            let mut marks = self.task_marks.lock().expect("task marks lock");
            let last = marks.insert(node.clone(), task_uid);
            last.is_some_and(|last| task_uid <= last)
        };
        if restarted {
            self.verified.lock().expect("verified lock").retain(|(n, _), _| n != node);
        }
        restarted
    }

    /// Forgets everything about `index` (deleted, rolled back or swapped).
    pub fn forget_index(&self, index: &str) {
        self.verified.lock().expect("verified lock").retain(|(_, i), _| i != index);
        self.pending.lock().expect("pending lock").retain(|(_, i), _| i != index);
    }

    /// Whether `node` missed the creation of `index` (recorded by this instance).
    pub fn is_pending(&self, node: &NodeId, index: &str) -> bool {
        self.pending.lock().expect("pending lock").contains_key(&(node.clone(), index.to_owned()))
    }

    /// Records that `node`, pending for `index`, missed documents written to it: once the
    /// index reaches the node it is held stale, like a node that lost its copy.
    pub fn missed_documents(&self, node: &NodeId, index: &str) {
        if let Some(missed) =
            self.pending.lock().expect("pending lock").get_mut(&(node.clone(), index.to_owned()))
        {
            *missed = true;
        }
    }

    /// `None` when `(node, index)` is not pending, else whether it missed documents.
    fn pending_missed(&self, node: &NodeId, index: &str) -> Option<bool> {
        self.pending.lock().expect("pending lock").get(&(node.clone(), index.to_owned())).copied()
    }

    /// The pending `(node, index)` pairs.
    pub fn pending(&self) -> Vec<(NodeId, String)> {
        self.pending.lock().expect("pending lock").keys().cloned().collect()
    }

    /// Records that `node` holds `index` with Miroir's settings (or has them queued in order).
    pub fn settle(&self, node: &NodeId, index: &str) {
        self.pending.lock().expect("pending lock").remove(&(node.clone(), index.to_owned()));
        self.verify(node, index);
    }
}

/// Records that `nodes` missed the creation (or the bookkeeping settings) of `index`, and
/// starts the retry loop if it is not running.
pub fn record_pending(state: &AppState, index: &str, nodes: impl IntoIterator<Item = NodeId>) {
    let convergence = state.convergence();
    let mut added = 0;
    {
        let mut pending = convergence.pending.lock().expect("pending lock");
        let mut verified = convergence.verified.lock().expect("verified lock");
        for node in nodes {
            verified.remove(&(node.clone(), index.to_owned()));
            if pending.insert((node.clone(), index.to_owned()), false).is_none() {
                added += 1;
                tracing::warn!(%node, index, "a node missed an index creation; retrying");
            }
        }
    }
    if added > 0 && !convergence.retrying.swap(true, Ordering::SeqCst) {
        tokio::spawn(retry_loop(state.clone()));
    }
}

/// Retries every pending creation each [`RETRY_EVERY`] until none is left.
async fn retry_loop(state: AppState) {
    loop {
        tokio::time::sleep(RETRY_EVERY).await;
        for (node, index) in state.convergence().pending() {
            let meta = match state.store().get_index(&index).await {
                Ok(Some(meta)) => meta,
                Ok(None) => {
                    state.convergence().forget_index(&index);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "convergence: cannot read the catalog");
                    continue;
                }
            };
            if !state.health().is_available(&node) {
                continue;
            }
            let _guard = match state.index_write_guard(&index).await {
                Ok(guard) => guard,
                Err(_) => continue,
            };
            match converge_node(&state, &node, &meta).await {
                Ok(found) => {
                    tracing::info!(%node, index, "a missed index creation reached the node");
                    settle_found(&state, &node, &index, found).await;
                }
                Err(reason) => tracing::debug!(%node, index, reason, "pending creation retried"),
            }
        }
        let convergence = state.convergence();
        // Stop only when nothing is pending; a pair recorded meanwhile restarts the loop.
        convergence.retrying.store(false, Ordering::SeqCst);
        if convergence.pending.lock().expect("pending lock").is_empty()
            || convergence.retrying.swap(true, Ordering::SeqCst)
        {
            return;
        }
    }
}

/// What [`converge_node`] found on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The index with `_miroir_shard` filterable: nothing sent.
    Converged,
    /// The index without the bookkeeping settings: the settings were sent.
    Bare,
    /// No index: it was created, then the settings sent.
    Missing,
}

/// Makes `node` hold `meta`'s index with the settings the other nodes hold (or the bookkeeping
/// settings alone when no other node answers). The node runs these tasks in order, so a write
/// sent after this lands in the converged index. `Err` says why the node could not be asked.
pub async fn converge_node(
    state: &AppState,
    node: &NodeId,
    meta: &IndexMeta,
) -> Result<Found, String> {
    converge(state, node, meta, true).await
}

/// [`converge_node`]; `wait_idle: false` acts even while the node has tasks of the index in
/// flight (a write just recreated the index on it).
async fn converge(
    state: &AppState,
    node: &NodeId,
    meta: &IndexMeta,
    wait_idle: bool,
) -> Result<Found, String> {
    let uid = meta.uid.as_str();
    let client = state.client(node).map_err(|e| e.to_string())?;
    let path = format!("/indexes/{uid}/settings");
    let read = client.send(Method::GET, &path, None, NodeAuth::NodeKey).await;
    let found = match read {
        Ok(response) if response.is_success() => {
            if holds_bookkeeping(&response.json()) {
                return Ok(Found::Converged);
            }
            Found::Bare
        }
        Ok(response) if response.status == 404 => Found::Missing,
        Ok(response) => return Err(format!("settings read answered {}", response.status)),
        Err(error) => return Err(error.to_string()),
    };
    if wait_idle && busy(&client, uid).await {
        // A creation or settings change still queued on the node is not a loss.
        return Err("the node has tasks of the index in flight".into());
    }
    if lost_documents(state, node, uid) {
        // Held before the index is made readable again: between its settings and the hold,
        // a search would count the node's empty shards as complete.
        hold(state, node, uid).await;
    }
    if found == Found::Missing {
        let body = serde_json::to_vec(&json!({ "uid": uid, "primaryKey": meta.primary_key }))
            .map_err(|e| e.to_string())?;
        let created = client
            .send(Method::POST, "/indexes", Some(NodeBody::json(body)), NodeAuth::NodeKey)
            .await
            .map_err(|e| e.to_string())?;
        if !created.is_success() {
            return Err(format!("index creation answered {}", created.status));
        }
    }
    let settings = reference_settings(state, node, uid).await;
    let body = serde_json::to_vec(&settings).map_err(|e| e.to_string())?;
    let sent = client
        .send(Method::PATCH, &path, Some(NodeBody::json(body)), NodeAuth::NodeKey)
        .await
        .map_err(|e| e.to_string())?;
    if !sent.is_success() {
        return Err(format!("settings update answered {}", sent.status));
    }
    Ok(found)
}

/// Gives `node` the settings of `meta`'s index as the other nodes hold them (it missed a
/// settings change). Call it under the index's write guard. `Err` says why it could not.
pub async fn copy_settings(
    state: &AppState,
    node: &NodeId,
    meta: &IndexMeta,
) -> Result<(), String> {
    let uid = meta.uid.as_str();
    let client = state.client(node).map_err(|e| e.to_string())?;
    let settings = reference_settings(state, node, uid).await;
    let body = serde_json::to_vec(&settings).map_err(|e| e.to_string())?;
    let path = format!("/indexes/{uid}/settings");
    let sent = client
        .send(Method::PATCH, &path, Some(NodeBody::json(body)), NodeAuth::NodeKey)
        .await
        .map_err(|e| e.to_string())?;
    if !sent.is_success() {
        return Err(format!("settings update answered {}", sent.status));
    }
    Ok(())
}

/// Whether node settings make `_miroir_shard` filterable.
fn holds_bookkeeping(settings: &Value) -> bool {
    settings["filterableAttributes"].as_array().is_some_and(|attributes| {
        attributes.iter().any(|a| {
            a.as_str() == Some(SHARD_FIELD)
                || a["attributePatterns"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p.as_str() == Some(SHARD_FIELD)))
        })
    })
}

/// The settings of `uid` as the first other node idle for it and holding them with the
/// bookkeeping answers (what Miroir committed there), else the bookkeeping settings alone (the
/// drift check brings the rest).
async fn reference_settings(state: &AppState, except: &NodeId, uid: &str) -> Value {
    let path = format!("/indexes/{uid}/settings");
    for client in state.clients().iter() {
        if client.id() == except || !state.health().is_available(client.id()) {
            continue;
        }
        if busy(client, uid).await {
            // Its settings may be about to change: copying them could undo a change in flight.
            continue;
        }
        if let Ok(response) = client.send(Method::GET, &path, None, NodeAuth::NodeKey).await {
            if response.is_success() {
                let settings = response.json();
                if holds_bookkeeping(&settings) {
                    return settings;
                }
            }
        }
    }
    json!({ "filterableAttributes": [SHARD_FIELD] })
}

/// Whether `client`'s node has an enqueued or processing task of `uid` (or does not say).
async fn busy(client: &NodeClient, uid: &str) -> bool {
    let path = format!("/tasks?indexUids={uid}&statuses=enqueued,processing&limit=1");
    match client.send(Method::GET, &path, None, NodeAuth::NodeKey).await {
        Ok(response) if response.is_success() => response.json()["total"].as_u64().unwrap_or(1) > 0,
        _ => true,
    }
}

/// Before a document write to `meta`'s index reaches `nodes`: every node not verified recently
/// is made to hold the index with Miroir's settings ([`converge_node`]). Call it under the
/// index's write guard, so the write follows these tasks on each node. A node that could not
/// be asked is left as it is (the write will not reach it either).
pub async fn ensure_on_nodes(state: &AppState, meta: &IndexMeta, nodes: &BTreeSet<NodeId>) {
    let uid = meta.uid.as_str();
    let convergence = state.convergence();
    let unverified: Vec<&NodeId> = nodes
        .iter()
        .filter(|node| {
            state.health().is_available(node)
                && (!convergence.is_verified(node, uid)
                    || (state.stale().is_stale(node, uid) && !state.stale().is_held(node, uid)))
        })
        .collect();
    if unverified.is_empty() {
        return;
    }
    let checks = unverified
        .into_iter()
        .map(|node| async move { (node, converge_node(state, node, meta).await) });
    for (node, outcome) in join_all(checks).await {
        match outcome {
            Ok(found) => {
                settle_found(state, node, uid, found).await;
            }
            Err(reason) => tracing::debug!(%node, index = uid, reason, "cannot check the index"),
        }
    }
}

/// After a document write to `meta`'s index: a node whose task uid went back (it restarted
/// empty, so the write recreated the index bare) gets the settings at once, and is held stale.
/// Call it under the index's write guard.
pub async fn after_write(
    state: &AppState,
    meta: &IndexMeta,
    outcomes: &std::collections::BTreeMap<NodeId, crate::fanout::NodeOutcome>,
) {
    for (node, outcome) in outcomes {
        let Ok(response) = outcome else { continue };
        if !response.is_success() {
            continue;
        }
        let Some(task_uid) = response.json()["taskUid"].as_u64() else { continue };
        if !state.convergence().observe_task(node, task_uid) {
            continue;
        }
        tracing::warn!(%node, index = %meta.uid, "a node restarted without its data");
        match converge(state, node, meta, false).await {
            Ok(found) => settle_found(state, node, &meta.uid, found).await,
            Err(reason) => tracing::warn!(%node, index = %meta.uid, reason,
                "cannot give a restarted node the index settings"),
        }
    }
}

/// Records what [`converge_node`] found: the pair is verified; a node that lacked the index
/// (or held it bare) and had not missed its creation lost it, and is held stale, as is one that
/// missed the creation and documents written since.
pub async fn settle_found(state: &AppState, node: &NodeId, uid: &str, found: Found) {
    let lost = lost_documents(state, node, uid);
    state.convergence().settle(node, uid);
    if found != Found::Converged && lost {
        tracing::warn!(%node, index = uid,
            "a node lost its copy of the index; created again, read around until refilled");
        hold(state, node, uid).await;
    }
}

/// Whether `node`, found without Miroir's copy of `uid`, lacks documents it should hold. Not
/// pending: it had the index and lost it. Pending: it missed the creation, and lacks documents
/// only if writes went on without it. A joining node never had the index: the rebalance fills
/// it, and nothing reads it before its shards are copied, so it is not held (a hold would have
/// the repair copy it again).
fn lost_documents(state: &AppState, node: &NodeId, uid: &str) -> bool {
    let lacks_documents = state.convergence().pending_missed(node, uid).unwrap_or(true);
    let joining = state
        .fleet()
        .fleet()
        .node(node)
        .is_some_and(|n| n.state == miroir_cluster::NodeState::Joining);
    lacks_documents && !joining
}

/// The task store namespace of held marks (`<index>/<node>` keys), shared by every instance.
const HOLDS: &str = "_miroir_stale_holds";

/// Holds `node` stale for `uid` here and, through the task store, on every instance (which pick
/// it up at their next [`sync_holds`]). The shared mark is written first.
async fn hold(state: &AppState, node: &NodeId, uid: &str) {
    if let Err(error) = state.store().plugin_put(HOLDS, &format!("{uid}/{node}"), b"").await {
        tracing::error!(%error, %node, index = uid,
            "cannot share a held replica: other instances may read it until it is refilled");
    }
    state.stale().hold(node, uid);
}

/// Ends every held mark and repair record of `uid` (the index was deleted or replaced), here
/// and in the store.
pub async fn release_holds(state: &AppState, uid: &str) {
    state.stale().release(uid);
    crate::repairs::forget_index(state, uid).await;
    let keys = match state.store().plugin_list_keys(HOLDS, &format!("{uid}/")).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(%error, index = uid, "cannot list the held replicas to release");
            return;
        }
    };
    for key in keys {
        if let Err(error) = state.store().plugin_delete(HOLDS, &key).await {
            tracing::warn!(%error, key, "cannot release a held replica");
        }
    }
}

/// Ends the held mark of `node` for `uid` (it was refilled), in the store and here; the other
/// instances drop it at their next [`sync_holds`].
pub async fn release_hold(state: &AppState, node: &NodeId, uid: &str) {
    if let Err(error) = state.store().plugin_delete(HOLDS, &format!("{uid}/{node}")).await {
        tracing::warn!(%error, %node, index = uid, "cannot release a held replica");
    }
    state.stale().release_node(node, uid);
}

/// The `(node, index)` pairs held stale in the task store (not the repair records).
pub async fn shared_holds(
    state: &AppState,
) -> miroir_store::StoreResult<BTreeSet<(NodeId, String)>> {
    let keys = state.store().plugin_list_keys(HOLDS, "").await?;
    Ok(keys
        .iter()
        .filter_map(|key| {
            let (uid, node) = key.split_once('/')?;
            Some((node.parse::<NodeId>().ok()?, uid.to_owned()))
        })
        .collect())
}

/// Makes this instance's held marks the ones in the task store (held marks and repair records,
/// see [`crate::repairs`]), so that every instance reads around the same replicas. The health
/// prober calls it every round.
pub async fn sync_holds(state: &AppState) {
    let held = match (shared_holds(state).await, crate::repairs::pairs(state).await) {
        (Ok(mut held), Ok(repairs)) => {
            held.extend(repairs);
            held
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "cannot read the held replicas; keeping the known ones");
            return;
        }
    };
    state.stale().replace_held(held);
}

/// Nodes of `outcomes` that did not take a creation step: unreachable, 5xx, or refused.
pub fn missed<'a>(
    outcomes: &'a std::collections::BTreeMap<NodeId, crate::fanout::NodeOutcome>,
) -> impl Iterator<Item = NodeId> + 'a {
    outcomes.iter().filter(|(_, o)| !matches!(o, Ok(r) if r.is_success())).map(|(n, _)| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_is_found_in_plain_and_pattern_lists() {
        assert!(holds_bookkeeping(&json!({"filterableAttributes": ["brand", "_miroir_shard"]})));
        assert!(holds_bookkeeping(&json!({"filterableAttributes": [
            {"attributePatterns": ["_miroir_shard"], "features": {}}
        ]})));
        assert!(!holds_bookkeeping(&json!({"filterableAttributes": []})));
        assert!(!holds_bookkeeping(&json!({})));
    }
}
