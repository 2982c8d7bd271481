//! What the cluster looks like from this instance: `GET /_miroir/topology` (nodes, groups,
//! their health and the indexes a node was recently found stale for), `GET /_miroir/shards`
//! (which nodes own each shard of each index) and `GET /_miroir/ready` (whether every shard of
//! every index can be searched).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use miroir_cluster::MovePhase;
use miroir_types::{ApiError, ShardId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::HttpResult;
use crate::AppState;

/// `GET /_miroir/topology` (admin key): replica groups, their nodes with address and health.
pub async fn topology(State(state): State<AppState>) -> Json<Value> {
    // Repairs in progress: what each node missed and is being given back (empty when the store
    // cannot be read; the rest of the answer does not need it).
    let repairs: Vec<Value> = crate::repairs::list(&state)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(node, index, record)| {
            json!({"node": node.as_str(), "index": index, "shards": record.shards,
                   "settings": record.settings, "since": record.since})
        })
        .collect();
    let health = state.health().snapshot();
    let stale = state.stale().stale_indexes();
    let view = state.fleet();
    let groups: Vec<Value> = state
        .topology()
        .groups()
        .iter()
        .map(|group| {
            let nodes: Vec<Value> = group
                .nodes
                .iter()
                .map(|node| {
                    let address = state.client(node).map(|c| c.base_url().to_owned()).ok();
                    json!({
                        "id": node.as_str(),
                        "address": address,
                        "state": view.fleet().node(node).map(|n| n.state.as_str()),
                        "health": health.get(node).map(|h| h.as_str()),
                        "staleIndexes": stale.get(node).cloned().unwrap_or_default(),
                    })
                })
                .collect();
            json!({"id": group.id.as_str(), "nodes": nodes})
        })
        .collect();
    Json(json!({
        "replicationFactor": state.replication_factor(),
        "defaultShards": state.config().shards,
        "fleetVersion": view.version(),
        "groups": groups,
        "rebalance": view.fleet().run.as_ref().map(crate::fleet::routes::run_json),
        "repairs": repairs,
    }))
}

/// The query of `GET /_miroir/shards`.
#[derive(Debug, Deserialize)]
pub struct ShardsQuery {
    /// Only this index.
    index: Option<String>,
}

/// `GET /_miroir/shards` (admin key): for each index (or `?index=`), each shard's owners per
/// group, with the shards no available node owns listed apart.
pub async fn shards(
    State(state): State<AppState>,
    Query(query): Query<ShardsQuery>,
) -> HttpResult<Json<Value>> {
    let indexes = match &query.index {
        Some(uid) => {
            vec![state
                .store()
                .get_index(uid)
                .await?
                .ok_or_else(|| ApiError::index_not_found(uid))?]
        }
        None => state.catalog().list_indexes().await?,
    };
    let mut out = serde_json::Map::new();
    for meta in indexes {
        let assignment = state.assignment(meta.shard_count);
        let topology = state.topology();
        let view = state.fleet();
        let shards: Vec<Value> = (0..meta.shard_count)
            .map(|s| {
                let shard = ShardId::new(s);
                let owners: BTreeMap<&str, Vec<&str>> = topology
                    .groups()
                    .iter()
                    .map(|g| {
                        let nodes = assignment.owners(&g.id, shard).iter().map(|n| n.as_str());
                        (g.id.as_str(), nodes.collect())
                    })
                    .collect();
                let moving: Vec<Value> = view
                    .fleet()
                    .run
                    .iter()
                    .flat_map(|run| run.moves.iter())
                    .filter(|m| m.shard == s && m.phase < MovePhase::Cleaned)
                    .map(|m| {
                        json!({"group": m.group.as_str(), "from": m.from, "to": m.to,
                               "phase": m.phase})
                    })
                    .collect();
                if moving.is_empty() {
                    json!({"shard": s, "owners": owners})
                } else {
                    json!({"shard": s, "owners": owners, "moving": moving})
                }
            })
            .collect();
        out.insert(
            meta.uid.clone(),
            json!({
                "shardCount": meta.shard_count,
                "unavailableShards": unavailable_shards(&state, &meta.uid, meta.shard_count),
                "shards": shards,
            }),
        );
    }
    Ok(Json(Value::Object(out)))
}

/// The shards of index `uid` (with `shard_count` shards) that no usable node owns, in any
/// group: every owner is down or stale for the index.
fn unavailable_shards(state: &AppState, uid: &str, shard_count: u32) -> Vec<u32> {
    let assignment = state.assignment(shard_count);
    let view = state.read_view(uid);
    (0..shard_count)
        .filter(|&s| {
            let shard = ShardId::new(s);
            !state
                .topology()
                .groups()
                .iter()
                .any(|g| assignment.owners(&g.id, shard).iter().any(|n| view.is_usable(n)))
        })
        .collect()
}

/// `GET /_miroir/ready` (open, for readiness probes): 200 when the task store answers, its
/// catalog was checked against the nodes' copy and no rebuild is restoring it, and every shard
/// of every index has a node that is neither down nor stale for the index in at least one group;
/// 503 otherwise, with the reason. Stale replicas are listed (`staleReplicas`: node → indexes)
/// whenever there are some, ready or not.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.recovery().is_rebuilding() {
        return not_ready(json!({"reason": "rebuilding the catalog from the nodes"}));
    }
    if !state.recovery().is_checked() && state.recovery().is_busy() {
        return not_ready(json!({"reason": "checking the catalog against the nodes"}));
    }
    if let Err(error) = crate::store_recovery::ensure_checked(&state).await {
        tracing::warn!(%error, "readiness: the catalog cannot be checked against the nodes");
        return not_ready(json!({"reason": "catalog not checked against the nodes"}));
    }
    let indexes = match state.catalog().list_indexes().await {
        Ok(indexes) => indexes,
        Err(error) => {
            tracing::warn!(%error, "readiness: the task store does not answer");
            return not_ready(json!({"reason": "task store unavailable"}));
        }
    };
    let missing: BTreeMap<String, Vec<u32>> = indexes
        .iter()
        .map(|meta| (meta.uid.clone(), unavailable_shards(&state, &meta.uid, meta.shard_count)))
        .filter(|(_, shards)| !shards.is_empty())
        .collect();
    let stale = state.stale().stale_indexes();
    let mut details = if missing.is_empty() {
        json!({"status": "ready"})
    } else {
        json!({"reason": "shards without an available replica", "unavailableShards": missing})
    };
    if !stale.is_empty() {
        let stale: BTreeMap<&str, &Vec<String>> =
            stale.iter().map(|(node, indexes)| (node.as_str(), indexes)).collect();
        details["staleReplicas"] = json!(stale);
    }
    if !missing.is_empty() {
        return not_ready(details);
    }
    Json(details).into_response()
}

fn not_ready(mut details: Value) -> Response {
    details["status"] = json!("unavailable");
    (StatusCode::SERVICE_UNAVAILABLE, Json(details)).into_response()
}
