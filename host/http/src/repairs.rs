//! Durable repair records: which owners missed an acknowledged write, shared by every instance.
//!
//! A write is acknowledged once `write_quorum` owners of each of its shards accepted it; an
//! owner that did not (down, refused, timed out) gets a record in the task store *before* the
//! answer, so what it missed is never forgotten, whichever instance dies. The record lives in the
//! plugin key-value namespace [`REPAIRS`] under `<node>/<index>`, as JSON
//! `{"shards": [...], "settings": bool, "generation": n, "since": rfc3339}`. Writes to an index are
//! serialized by the index write guard, so the read-merge-write of a record under it is safe.
//!
//! A record holds the node stale for the index on every instance (folded into the shared holds
//! by [`crate::convergence::sync_holds`]): reads go around it until the leader's repair worker
//! ([`crate::repair`]) has copied its shards back and removed the record. The generation tells
//! the worker whether the node missed another write while it was being repaired.

use std::collections::{BTreeMap, BTreeSet};

use miroir_cluster::missed_owners;
use miroir_store::StoreResult;
use miroir_types::{ErrorCode, NodeId, ShardId};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// The task store namespace of repair records (`<node>/<index>` keys).
pub const REPAIRS: &str = "_miroir_repairs";

/// What one node missed of one index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairRecord {
    /// The shards it missed document writes of.
    #[serde(default)]
    pub shards: BTreeSet<u32>,
    /// Whether it missed a settings change.
    #[serde(default)]
    pub settings: bool,
    /// Bumped by every missed write merged in.
    #[serde(default)]
    pub generation: u64,
    /// When the first missed write was recorded (RFC 3339).
    #[serde(default)]
    pub since: String,
}

fn key(node: &NodeId, index: &str) -> String {
    format!("{node}/{index}")
}

/// The record of `node` for `index`, if any.
pub async fn get(
    state: &AppState,
    node: &NodeId,
    index: &str,
) -> StoreResult<Option<RepairRecord>> {
    let bytes = state.store().plugin_get(REPAIRS, &key(node, index)).await?;
    Ok(bytes.and_then(|bytes| parse(&bytes)))
}

fn parse(bytes: &[u8]) -> Option<RepairRecord> {
    match serde_json::from_slice(bytes) {
        Ok(record) => Some(record),
        Err(error) => {
            // Unreadable: repair everything rather than nothing.
            tracing::warn!(%error, "an unreadable repair record is taken as a full repair");
            Some(RepairRecord { settings: true, ..RepairRecord::default() })
        }
    }
}

/// Every record: `(node, index, record)`.
pub async fn list(state: &AppState) -> StoreResult<Vec<(NodeId, String, RepairRecord)>> {
    let mut out = Vec::new();
    for key in state.store().plugin_list_keys(REPAIRS, "").await? {
        let Some((node, index)) = key.split_once('/') else { continue };
        let Ok(node) = node.parse::<NodeId>() else { continue };
        if let Some(bytes) = state.store().plugin_get(REPAIRS, &key).await? {
            if let Some(record) = parse(&bytes) {
                out.push((node, index.to_owned(), record));
            }
        }
    }
    Ok(out)
}

/// The `(node, index)` pairs with a record (cheap: keys only).
pub async fn pairs(state: &AppState) -> StoreResult<BTreeSet<(NodeId, String)>> {
    Ok(state
        .store()
        .plugin_list_keys(REPAIRS, "")
        .await?
        .iter()
        .filter_map(|key| {
            let (node, index) = key.split_once('/')?;
            Some((node.parse::<NodeId>().ok()?, index.to_owned()))
        })
        .collect())
}

/// Merges `shards` (and `settings`) into the record of `node` for `index`, bumps its generation,
/// and holds the node stale for the index here. Call it under the index write guard.
pub async fn add(
    state: &AppState,
    node: &NodeId,
    index: &str,
    shards: impl IntoIterator<Item = ShardId>,
    settings: bool,
) -> StoreResult<()> {
    let mut record = get(state, node, index).await?.unwrap_or_else(|| RepairRecord {
        since: time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        ..RepairRecord::default()
    });
    record.shards.extend(shards.into_iter().map(ShardId::get));
    record.settings |= settings;
    record.generation += 1;
    let bytes = serde_json::to_vec(&record).expect("a record serializes");
    state.store().plugin_put(REPAIRS, &key(node, index), &bytes).await?;
    state.stale().hold(node, index);
    Ok(())
}

/// After a write to `shards` of `index` reached quorum: a record for every owner of those shards
/// that did not accept (`settings` for a settings change). `Err` (503) when a record cannot be
/// stored: the write must not be acknowledged. Call it under the index write guard.
pub async fn record_missed(
    state: &AppState,
    index: &str,
    shard_count: u32,
    shards: &BTreeSet<ShardId>,
    accepted: &BTreeSet<NodeId>,
    settings: bool,
) -> HttpResult<()> {
    let assignment = state.assignment(shard_count);
    let missed: BTreeMap<NodeId, BTreeSet<ShardId>> =
        missed_owners(&assignment, shards, |node| accepted.contains(node));
    for (node, shards) in missed {
        tracing::warn!(%node, index, shards = shards.len(), settings,
            "a node missed an acknowledged write; recorded for repair");
        if let Err(error) = add(state, &node, index, shards, settings).await {
            tracing::error!(%error, %node, index, "cannot record a missed write");
            return Err(HttpError::api(
                ErrorCode::MiroirNoQuorum,
                format!(
                    "Node `{node}` missed this write to `{index}` and the repair record could \
                     not be stored in the task store. The write was not acknowledged."
                ),
            ));
        }
    }
    Ok(())
}

/// Removes the record of `node` for `index` if its generation is still `generation` (nothing
/// was missed since it was read); whether it was removed. Call it under the index write guard.
pub async fn finish(
    state: &AppState,
    node: &NodeId,
    index: &str,
    generation: u64,
) -> StoreResult<bool> {
    match get(state, node, index).await? {
        Some(record) if record.generation == generation => {
            state.store().plugin_delete(REPAIRS, &key(node, index)).await?;
            Ok(true)
        }
        Some(_) => Ok(false),
        None => Ok(true),
    }
}

/// Removes every record of `index` (deleted or replaced: nothing left to repair).
pub async fn forget_index(state: &AppState, index: &str) {
    let pairs = match pairs(state).await {
        Ok(pairs) => pairs,
        Err(error) => {
            tracing::warn!(%error, index, "cannot list the repair records to forget");
            return;
        }
    };
    for (node, _) in pairs.iter().filter(|(_, i)| i == index) {
        if let Err(error) = state.store().plugin_delete(REPAIRS, &key(node, index)).await {
            tracing::warn!(%error, %node, index, "cannot forget a repair record");
        }
    }
}

/// Removes every record of `node` (it left the fleet: nothing to give back to it).
pub async fn forget_node(state: &AppState, node: &NodeId) {
    let pairs = match pairs(state).await {
        Ok(pairs) => pairs,
        Err(error) => {
            tracing::warn!(%error, %node, "cannot list the repair records to forget");
            return;
        }
    };
    for (_, index) in pairs.iter().filter(|(n, _)| n == node) {
        if let Err(error) = state.store().plugin_delete(REPAIRS, &key(node, index)).await {
            tracing::warn!(%error, %node, index, "cannot forget a repair record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_unreadable_means_full_repair() {
        let record = RepairRecord {
            shards: [1, 3].into(),
            settings: false,
            generation: 4,
            since: "x".into(),
        };
        let bytes = serde_json::to_vec(&record).unwrap();
        assert_eq!(parse(&bytes), Some(record));
        assert!(parse(b"not json").unwrap().settings);
        assert_eq!(parse(br#"{"shards":[2]}"#).unwrap().shards, BTreeSet::from([2]));
    }
}
