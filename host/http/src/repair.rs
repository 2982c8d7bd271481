//! Repairing replicas that missed writes, and the anti-entropy check that finds the others.
//!
//! Run by the leader only (the binary starts the loops):
//!
//! - [`repair_round`] (about every second): for each repair record ([`crate::repairs`]) and each
//!   held-stale replica whose node answers, the index and its settings are made right on the
//!   node, then the shards to repair are copied from fresh owners ([`sync_from_sources`],
//!   every source read at once): same group first, else another group, never a node that lost
//!   the index or is under repair for that shard. A record or hold covering the whole index (a
//!   node that came back empty, or missed a settings change) repairs every shard the node owns;
//!   a record of document writes, the shards it lists. When every reachable owner of a shard
//!   missed writes to it (two replicas each missed some), the copies are merged
//!   ([`merge_from_source`]: each gains the documents it lacks), since none holds them all.
//!   Then, under the index write guard, the record is removed if no write was missed since it
//!   was read (same generation) and the node's hold released on every instance; else the next
//!   round repairs again.
//! - [`anti_entropy`] (every `rebalancer.drift_check_interval`): for every shard of every index,
//!   the owners' document counts are compared under the write guard once the owners are idle;
//!   an owner that differs from the majority (with no majority: from the owner holding most
//!   documents) gets a repair record for that shard.
//!
//! [`refresh_status`] (every instance) computes what the metrics show: pending repairs per
//! node (records and held replicas) and the share of shards with a fresh replica.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::Method;
use miroir_cluster::{NodeAuth, NodeBody};
use miroir_store::IndexMeta;
use miroir_types::{NodeId, ShardId};
use serde_json::json;

use crate::bookkeeping::shard_filter;
use crate::repairs::{self, RepairRecord};
use crate::shard_sync::{copy_rounds, merge_from_source, sync_from_sources, wait_idle, SyncError};
use crate::AppState;

/// Why a repair did not finish.
#[derive(Debug, thiserror::Error)]
enum RepairError {
    /// Copying a shard failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// Every other owner of the shard is down, held stale or under repair itself.
    #[error("no fresh owner of shard {0} to copy from")]
    NoSource(u32),
    /// The node's copy of the index could not be checked.
    #[error("cannot check the node's copy of the index: {0}")]
    Check(String),
}

impl From<crate::HttpError> for RepairError {
    fn from(error: crate::HttpError) -> Self {
        RepairError::Sync(error.into())
    }
}

/// The longest pause between two attempts at a repair that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the repair metrics show, refreshed by [`refresh_status`] and the repair worker.
#[derive(Debug, Default)]
pub struct RepairStatus {
    pending: Mutex<BTreeMap<NodeId, u64>>,
    coverage_bits: AtomicU64,
    copied: AtomicU64,
    lost: AtomicU64,
    /// Pairs whose last repair failed: when to try again, and how many failures in a row.
    backoff: Mutex<BTreeMap<(NodeId, String), (Instant, u32)>>,
}

impl RepairStatus {
    /// Indexes waiting for a repair per node, with a record or held after losing the index
    /// (nodes without any are absent).
    pub fn pending(&self) -> BTreeMap<NodeId, u64> {
        self.pending.lock().expect("repair status lock").clone()
    }

    /// Shards (of every index) with a fresh replica, divided by all shards; `1` with no index.
    pub fn coverage(&self) -> f64 {
        let bits = self.coverage_bits.load(Ordering::Relaxed);
        if bits == 0 {
            1.0
        } else {
            f64::from_bits(bits)
        }
    }

    /// Shards repaired with no copy of their earlier documents left (every replica lost its
    /// data), since start (only grows).
    pub fn shards_lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Documents copied by repairs since start (only grows).
    pub fn documents_copied(&self) -> u64 {
        self.copied.load(Ordering::Relaxed)
    }
}

/// Refreshes [`RepairStatus`]: records per node, and shard coverage (a shard is covered when
/// some owner of it answers and is neither held stale nor under repair for the index).
pub async fn refresh_status(state: &AppState) {
    let Ok(records) = repairs::pairs(state).await else { return };
    let Ok(holds) = crate::convergence::shared_holds(state).await else { return };
    let Ok(indexes) = state.store().list_indexes().await else { return };
    // A pair is pending while it has a record or is held (a lost index, refilled whole).
    let mut pending: BTreeMap<NodeId, u64> = BTreeMap::new();
    for (node, _) in records.union(&holds) {
        *pending.entry(node.clone()).or_default() += 1;
    }
    let (mut covered, mut total) = (0u64, 0u64);
    for meta in &indexes {
        let assignment = state.assignment(meta.shard_count);
        for shard in (0..meta.shard_count).map(ShardId::new) {
            total += 1;
            let fresh = read_owners(state, &assignment, shard).iter().any(|node| {
                let pair = (node.clone(), meta.uid.clone());
                state.health().is_available(node)
                    && !records.contains(&pair)
                    && !holds.contains(&pair)
            });
            covered += u64::from(fresh);
        }
    }
    let status = state.repair_status();
    *status.pending.lock().expect("repair status lock") = pending;
    let coverage = if total == 0 { 1.0 } else { covered as f64 / total as f64 };
    status.coverage_bits.store(coverage.to_bits(), Ordering::Relaxed);
}

/// One pass of the repair worker (see the module documentation); the number of `(node, index)`
/// pairs fully repaired.
pub async fn repair_round(state: &AppState) -> usize {
    let records = match repairs::list(state).await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(%error, "repair: cannot read the repair records");
            return 0;
        }
    };
    let holds = match crate::convergence::shared_holds(state).await {
        Ok(holds) => holds,
        Err(error) => {
            tracing::warn!(%error, "repair: cannot read the held replicas");
            return 0;
        }
    };
    let mut work: BTreeMap<(NodeId, String), Option<RepairRecord>> = BTreeMap::new();
    for (node, index, record) in records {
        work.insert((node, index), Some(record));
    }
    for pair in holds.iter() {
        work.entry(pair.clone()).or_insert(None);
    }
    // What each pair must not be copied from.
    let unfit: BTreeMap<(NodeId, String), Unfit> = work
        .iter()
        .map(|(pair, record)| {
            let unfit = match record {
                _ if holds.contains(pair) => Unfit::Lost,
                Some(record) if !record.settings => Unfit::Shards(record.shards.clone()),
                _ => Unfit::Whole,
            };
            (pair.clone(), unfit)
        })
        .collect();
    let mut repaired = 0;
    let backoff = &state.repair_status().backoff;
    backoff.lock().expect("repair backoff lock").retain(|pair, _| unfit.contains_key(pair));
    for ((node, index), record) in work {
        if !state.health().is_available(&node) {
            continue;
        }
        let pair = (node.clone(), index.clone());
        let waiting = backoff.lock().expect("repair backoff lock").get(&pair).copied();
        if waiting.is_some_and(|(next, _)| Instant::now() < next) {
            continue;
        }
        let failed = match repair_pair(state, &node, &index, record, &unfit).await {
            Ok(true) => {
                repaired += 1;
                tracing::info!(%node, index, "repair: the node holds the index again");
                false
            }
            Ok(false) => false,
            Err(error) => {
                tracing::warn!(%node, index, %error, "repair: failed, retried later");
                true
            }
        };
        let mut backoff = backoff.lock().expect("repair backoff lock");
        if failed {
            // 1, 2, 4 ... 30 s between attempts while it keeps failing.
            let failures = waiting.map_or(0, |(_, n)| n) + 1;
            let pause = Duration::from_secs(1 << failures.min(5)).min(MAX_BACKOFF);
            backoff.insert(pair, (Instant::now() + pause, failures));
        } else {
            backoff.remove(&pair);
        }
    }
    repaired
}

/// Repairs `node`'s copy of `index`; `Ok(true)` when the record and hold are gone, `Ok(false)`
/// when a later round must go on.
#[tracing::instrument(name = "repair", skip_all, fields(node = %node, index = %index))]
async fn repair_pair(
    state: &AppState,
    node: &NodeId,
    index: &str,
    record: Option<RepairRecord>,
    unfit: &UnfitPairs,
) -> Result<bool, RepairError> {
    let Some(meta) = state.store().get_index(index).await.map_err(store_error)? else {
        // The index is gone: nothing to repair.
        crate::convergence::release_holds(state, index).await;
        return Ok(true);
    };
    {
        let _guard = state.index_write_guard(index).await?;
        // Checked afresh (not from the cache of verified nodes): a node that restarted empty
        // since is held now, and repaired whole, rather than only the shards of its record.
        let found = crate::convergence::converge_node(state, node, &meta)
            .await
            .map_err(RepairError::Check)?;
        crate::convergence::settle_found(state, node, index, found).await;
        if record.as_ref().is_some_and(|r| r.settings) {
            crate::convergence::copy_settings(state, node, &meta)
                .await
                .map_err(|reason| SyncError::Store(format!("settings: {reason}")))?;
        }
    }
    // Held (now, or since the round started): the node lost the index, every shard it owns.
    let held = crate::convergence::shared_holds(state)
        .await
        .map_err(store_error)?
        .contains(&(node.clone(), index.to_owned()));
    let whole = held || record.as_ref().is_none_or(|r| r.settings);
    tracing::info!(%node, index, held, record = ?record.as_ref().map(|r| (r.generation, &r.shards)),
        "repair: started");
    if held {
        // A node that lost the index may have lost everything, the clients' API keys included
        // (clients' keys are forwarded to the nodes).
        if let Err(error) =
            crate::fleet::keys::copy_keys_to(state, std::slice::from_ref(node)).await
        {
            tracing::warn!(%node, %error, "cannot give a repaired node its API keys back");
        }
    }
    let assignment = state.assignment(meta.shard_count);
    // Every shard the node receives writes of (a node taking a shard over included).
    let owned: Vec<ShardId> = (0..meta.shard_count)
        .map(ShardId::new)
        .filter(|shard| assignment.write_targets(*shard).any(|(_, owners)| owners.contains(node)))
        .filter(|shard| whole || record.as_ref().is_some_and(|r| r.shards.contains(&shard.get())))
        .collect();
    // The shards are copied together, every source read at once (at most 16 shards per filter).
    let mut by_source: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
    let mut to_merge: BTreeMap<NodeId, Vec<ShardId>> = BTreeMap::new();
    for shard in owned {
        if let Some(source) = fresh_owner(state, &meta, shard, node, unfit) {
            by_source.entry(source).or_default().push(shard);
        } else if let Some(source) = partial_owner(state, &meta, shard, node, unfit) {
            to_merge.entry(source).or_default().push(shard);
        } else if lost_everywhere(state, &meta, shard, node, unfit) {
            // Every other owner lost the index too: no copy of what was written before is
            // left. The shard is taken as it is now (the writes since), rather than read
            // around for ever.
            tracing::error!(%node, index, shard = shard.get(),
                "repair: every replica of this shard lost its data; its earlier documents are gone");
            state.repair_status().lost.fetch_add(1, Ordering::Relaxed);
        } else {
            return Err(RepairError::NoSource(shard.get()));
        }
    }
    let status = state.repair_status();
    for (source, shards) in &to_merge {
        // No owner holds every write: both copies are merged (each side gains what it lacks;
        // the source's own record then copies the union back to it).
        tracing::warn!(%node, index, %source, shards = ?shards.iter().map(|s| s.get()).collect::<Vec<_>>(),
            "repair: no owner of these shards holds every write; merging the copies");
        let before = std::sync::atomic::AtomicU64::new(0);
        let report = merge_from_source(state, index, source, shards, node, &|copied| {
            let last = before.swap(copied, Ordering::Relaxed);
            status.copied.fetch_add(copied.saturating_sub(last), Ordering::Relaxed);
        })
        .await?;
        tracing::debug!(%node, index, %source, ?report, "repair: shards merged");
    }
    for sources in copy_rounds(&by_source) {
        let before = std::sync::atomic::AtomicU64::new(0);
        let report = sync_from_sources(state, index, &sources, node, &|copied| {
            let last = before.swap(copied, Ordering::Relaxed);
            status.copied.fetch_add(copied.saturating_sub(last), Ordering::Relaxed);
        })
        .await?;
        tracing::debug!(%node, index, ?sources, ?report, "repair: shards copied");
    }
    let _guard = state.index_write_guard(index).await?;
    if let Some(record) = &record {
        if !repairs::finish(state, node, index, record.generation).await.map_err(store_error)? {
            return Ok(false);
        }
    } else if repairs::get(state, node, index).await.map_err(store_error)?.is_some() {
        // A record appeared meanwhile: the next round repairs it, then releases the hold.
        return Ok(false);
    }
    if whole {
        crate::convergence::release_hold(state, node, index).await;
    } else {
        // Held here since the missed write; the other instances drop it with the record.
        state.stale().release_node(node, index);
    }
    Ok(true)
}

/// Why a node under repair is no source for some shards of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unfit {
    /// It lost the index (held stale): no shard.
    Lost,
    /// It missed a settings change: no shard (it is repaired whole).
    Whole,
    /// It missed document writes to these shards.
    Shards(BTreeSet<u32>),
}

/// The pairs under repair.
type UnfitPairs = BTreeMap<(NodeId, String), Unfit>;

/// An owner of `shard` to copy from: answering, not `except`, not held stale for the index nor
/// under repair for this shard; the node's own group first.
fn fresh_owner(
    state: &AppState,
    meta: &IndexMeta,
    shard: ShardId,
    except: &NodeId,
    unfit: &UnfitPairs,
) -> Option<NodeId> {
    let assignment = state.assignment(meta.shard_count);
    let topology = state.topology();
    let own_group = topology.group_of(except);
    // Read owners only: a node still receiving the shard (a move in progress) is no source.
    let mut candidates: Vec<(bool, NodeId)> = topology
        .groups()
        .iter()
        .flat_map(|group| {
            let other_group = Some(&group.id) != own_group;
            assignment.owners(&group.id, shard).iter().map(move |n| (other_group, n.clone()))
        })
        .filter(|(_, n)| {
            // A node under repair for other shards of the index (held stale for the whole
            // index for reads) holds every write of this one.
            let fit = match unfit.get(&(n.clone(), meta.uid.clone())) {
                Some(Unfit::Lost | Unfit::Whole) => false,
                Some(Unfit::Shards(shards)) => !shards.contains(&shard.get()),
                None => !state.stale().is_held(n, &meta.uid),
            };
            n != except && state.health().is_available(n) && fit
        })
        .collect();
    candidates.sort();
    candidates.into_iter().next().map(|(_, n)| n)
}

/// When no owner of `shard` is fresh ([`fresh_owner`]): an owner that holds the index but
/// missed some writes to it (a record, not a lost index), to merge from.
/// `None` while some other owner is merely unreachable: it may hold every write, so the repair
/// waits for it rather than settle for a partial copy.
fn partial_owner(
    state: &AppState,
    meta: &IndexMeta,
    shard: ShardId,
    except: &NodeId,
    unfit: &UnfitPairs,
) -> Option<NodeId> {
    let assignment = state.assignment(meta.shard_count);
    let owners: Vec<NodeId> =
        read_owners(state, &assignment, shard).into_iter().filter(|n| n != except).collect();
    let record_only = |n: &NodeId| {
        matches!(unfit.get(&(n.clone(), meta.uid.clone())), Some(Unfit::Whole | Unfit::Shards(_)))
    };
    let unreachable_fresh = owners.iter().any(|n| {
        !state.health().is_available(n) && !unfit.contains_key(&(n.clone(), meta.uid.clone()))
    });
    if unreachable_fresh {
        return None;
    }
    owners.into_iter().find(|n| state.health().is_available(n) && record_only(n))
}

/// Whether every other owner of `shard` answers and lost the index: no copy of the shard's
/// earlier documents is left anywhere.
fn lost_everywhere(
    state: &AppState,
    meta: &IndexMeta,
    shard: ShardId,
    except: &NodeId,
    unfit: &UnfitPairs,
) -> bool {
    let assignment = state.assignment(meta.shard_count);
    read_owners(state, &assignment, shard).iter().filter(|n| *n != except).all(|n| {
        state.health().is_available(n)
            && unfit.get(&(n.clone(), meta.uid.clone())) == Some(&Unfit::Lost)
    })
}

/// The owners reads use for `shard`, in every group.
fn read_owners(
    state: &AppState,
    assignment: &miroir_cluster::Assignment,
    shard: ShardId,
) -> Vec<NodeId> {
    state
        .topology()
        .groups()
        .iter()
        .flat_map(|group| assignment.owners(&group.id, shard).iter().cloned())
        .collect()
}

fn store_error(error: miroir_store::StoreError) -> SyncError {
    SyncError::Store(error.to_string())
}

/// The anti-entropy check (see the module documentation); the number of records it added.
#[tracing::instrument(name = "anti_entropy", skip_all)]
pub async fn anti_entropy(state: &AppState) -> usize {
    let indexes = match state.store().list_indexes().await {
        Ok(indexes) => indexes,
        Err(error) => {
            tracing::warn!(%error, "anti-entropy: cannot read the catalog");
            return 0;
        }
    };
    let unfit = repairs::pairs(state).await.unwrap_or_default();
    let holds = crate::convergence::shared_holds(state).await.unwrap_or_default();
    let mut added = 0;
    for meta in indexes.iter().filter(|meta| meta.primary_key.is_some()) {
        let assignment = state.assignment(meta.shard_count);
        for shard in (0..meta.shard_count).map(ShardId::new) {
            let owners: Vec<NodeId> = read_owners(state, &assignment, shard)
                .into_iter()
                .filter(|n| {
                    let pair = (n.clone(), meta.uid.clone());
                    state.health().is_available(n)
                        && !unfit.contains(&pair)
                        && !holds.contains(&pair)
                })
                .collect();
            if owners.len() < 2 {
                continue;
            }
            match compare_shard(state, meta, shard, &owners).await {
                Ok(n) => added += n,
                Err(error) => tracing::debug!(index = %meta.uid, shard = shard.get(), %error,
                    "anti-entropy: shard not compared"),
            }
        }
    }
    added
}

/// Counts `shard` on `owners` under the write guard once they are idle, and records a repair
/// for every owner that differs from the majority.
async fn compare_shard(
    state: &AppState,
    meta: &IndexMeta,
    shard: ShardId,
    owners: &[NodeId],
) -> Result<usize, SyncError> {
    let uid = meta.uid.as_str();
    // Idle first without the guard, so client writes wait only for what is queued since.
    for node in owners {
        crate::shard_sync::settle(&state.client(node)?, uid).await;
    }
    let _guard = state.index_write_guard(uid).await?;
    let mut counts = BTreeMap::new();
    for node in owners {
        let client = state.client(node)?;
        wait_idle(&client, uid).await?;
        let body = json!({ "filter": shard_filter(shard), "limit": 1,
            "fields": [meta.primary_key.as_deref().unwrap_or("id")] });
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let path = format!("/indexes/{uid}/documents/fetch");
        let response = client
            .send(Method::POST, &path, Some(NodeBody::json(bytes)), NodeAuth::NodeKey)
            .await?;
        if !response.is_success() {
            // Lacking the index or the bookkeeping: convergence and holds deal with it.
            return Ok(0);
        }
        let Some(total) = response.json()["total"].as_u64() else { return Ok(0) };
        counts.insert(node.clone(), total);
    }
    let Some(reference) = reference_count(&counts) else { return Ok(0) };
    let mut added = 0;
    for (node, count) in counts.iter().filter(|(_, c)| **c != reference) {
        tracing::warn!(%node, index = uid, shard = shard.get(), count, reference,
            "anti-entropy: an owner's shard differs; recorded for repair");
        repairs::add(state, node, uid, [shard], false).await.map_err(store_error)?;
        added += 1;
    }
    Ok(added)
}

/// The count most owners hold (a strict majority), else the largest.
fn reference_count(counts: &BTreeMap<NodeId, u64>) -> Option<u64> {
    let mut tally: BTreeMap<u64, usize> = BTreeMap::new();
    for count in counts.values() {
        *tally.entry(*count).or_default() += 1;
    }
    let (count, votes) = tally.iter().max_by_key(|(count, votes)| (**votes, **count))?;
    if *votes * 2 > counts.len() {
        Some(*count)
    } else {
        counts.values().max().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[u64]) -> BTreeMap<NodeId, u64> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (NodeId::new(format!("n{i}")).unwrap(), *v))
            .collect()
    }

    #[test]
    fn the_majority_count_wins_else_the_largest() {
        assert_eq!(reference_count(&counts(&[5, 5, 3])), Some(5));
        assert_eq!(reference_count(&counts(&[3, 3, 5])), Some(3));
        assert_eq!(reference_count(&counts(&[3, 5])), Some(5));
        assert_eq!(reference_count(&counts(&[])), None);
    }
}
