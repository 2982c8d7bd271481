//! The fleet's admin routes (admin key): list, add, drain and remove nodes; a rebalance run's
//! progress; pause and resume it.
//!
//! - `GET /_miroir/nodes`: every node with its state and health, and the open run.
//! - `POST /_miroir/nodes` `{"id", "address", "replicaGroup"}`: adds a node; a run copies it its
//!   shards (202).
//! - `POST /_miroir/nodes/{id}/drain`: a run moves every shard off the node (202).
//! - `DELETE /_miroir/nodes/{id}`: removes a drained node (200); `?force=true` removes a dead
//!   active one, its shards rebuilt from their other replicas first (202).
//! - `GET /_miroir/rebalance/status`, `POST /_miroir/rebalance/pause|resume`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use miroir_cluster::{Fleet, FleetError, MovePhase, NodeState, Run, RunState};
use miroir_types::{ApiError, ErrorCode, GroupId, NodeId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{archived_runs, update};
use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// The body of `POST /_miroir/nodes`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewNode {
    id: Option<String>,
    address: Option<String>,
    #[serde(alias = "replica_group")]
    replica_group: Option<String>,
}

/// `GET /_miroir/nodes`.
pub async fn list_nodes(State(state): State<AppState>) -> Json<Value> {
    let view = state.fleet();
    Json(fleet_json(&state, view.fleet()))
}

/// `POST /_miroir/nodes`.
pub async fn add_node(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> HttpResult<Response> {
    let new: NewNode = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("The node is not valid JSON of the expected shape: {e}")))?;
    let id = new.id.ok_or_else(|| invalid("`id` is required".into()))?;
    let id = NodeId::new(id).map_err(|e| invalid(format!("`id` is invalid: {e}")))?;
    let address = new.address.ok_or_else(|| invalid("`address` is required".into()))?;
    if !(address.starts_with("http://") || address.starts_with("https://")) {
        return Err(invalid(format!("`address` must be an http(s) URL, got `{address}`")));
    }
    let group = match new.replica_group {
        Some(group) => GroupId::new(group).map_err(|e| invalid(format!("`replicaGroup`: {e}")))?,
        None => default_group(state.fleet().fleet()),
    };
    let shards = planned_shards(&state).await?;
    let reason = format!("add node {id}");
    let run = update(&state, None, |fleet| {
        fleet.add_node(id.clone(), address.clone(), group.clone())?;
        Ok(fleet.start_run(reason.clone(), shards, now()))
    })
    .await?;
    Ok(accepted(&state, &id, run))
}

/// `POST /_miroir/nodes/{id}/drain`.
pub async fn drain_node(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    let id = node_id(&id)?;
    let shards = planned_shards(&state).await?;
    let reason = format!("drain node {id}");
    let run = update(&state, None, |fleet| {
        fleet.drain_node(&id, false)?;
        Ok(fleet.start_run(reason.clone(), shards, now()))
    })
    .await?;
    Ok(accepted(&state, &id, run))
}

/// The query of `DELETE /_miroir/nodes/{id}`.
#[derive(Debug, Deserialize)]
pub struct RemoveQuery {
    #[serde(default)]
    force: bool,
}

/// `DELETE /_miroir/nodes/{id}`.
pub async fn remove_node(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RemoveQuery>,
) -> HttpResult<Response> {
    let id = node_id(&id)?;
    let shards = planned_shards(&state).await?;
    let reason = format!("remove dead node {id}");
    let run = update(&state, None, |fleet| {
        if fleet.remove_node(&id, query.force)? {
            Ok(fleet.start_run(reason.clone(), shards, now()))
        } else {
            Ok(None)
        }
    })
    .await?;
    let removed = state.fleet().fleet().node(&id).is_some_and(|n| n.state == NodeState::Removed);
    if removed {
        return Ok((StatusCode::OK, Json(node_json(&state, &id))).into_response());
    }
    Ok(accepted(&state, &id, run))
}

/// `GET /_miroir/rebalance/status`: the open run, then the finished ones (latest first).
pub async fn status(State(state): State<AppState>) -> HttpResult<Json<Value>> {
    let view = state.fleet();
    let current = view.fleet().run.as_ref().map(run_json);
    let mut finished = archived_runs(&state).await?;
    finished.reverse();
    Ok(Json(json!({
        "fleetVersion": view.version(),
        "current": current,
        "runs": finished.iter().map(run_json).collect::<Vec<_>>(),
    })))
}

/// `POST /_miroir/rebalance/pause`.
pub async fn pause(State(state): State<AppState>) -> HttpResult<Json<Value>> {
    set_run_state(&state, RunState::Running, RunState::Paused).await
}

/// `POST /_miroir/rebalance/resume`.
pub async fn resume(State(state): State<AppState>) -> HttpResult<Json<Value>> {
    set_run_state(&state, RunState::Paused, RunState::Running).await
}

async fn set_run_state(state: &AppState, from: RunState, to: RunState) -> HttpResult<Json<Value>> {
    let run = update(state, None, |fleet| {
        let Some(run) = fleet.run.as_mut() else {
            return Err(FleetError::WrongState {
                node: NodeId::new("rebalance").expect("a valid literal id"),
                state: "idle",
                needed: "no rebalance is running",
            });
        };
        if run.state == from {
            run.state = to;
        }
        Ok(run.clone())
    })
    .await
    .map_err(|e| match e {
        HttpError::Api(api) if api.code() == ErrorCode::MiroirFleetConflict => HttpError::from(
            ApiError::new(ErrorCode::MiroirFleetConflict, "No rebalance is running."),
        ),
        other => other,
    })?;
    Ok(Json(run_json(&run)))
}

/// The largest shard count of any index, and the configured default: the shards a run plans.
async fn planned_shards(state: &AppState) -> HttpResult<u32> {
    let indexes = state.catalog().list_indexes().await?;
    Ok(indexes.iter().map(|i| i.shard_count).chain([state.config().shards]).max().unwrap_or(1))
}

/// The group of a node added without one: the first member's (a fleet of one group).
fn default_group(fleet: &Fleet) -> GroupId {
    fleet
        .members()
        .map(|n| n.replica_group.clone())
        .next()
        .unwrap_or_else(|| GroupId::new("default").expect("a valid literal group"))
}

fn accepted(state: &AppState, id: &NodeId, run: Option<u64>) -> Response {
    let mut body = node_json(state, id);
    body["rebalanceRun"] = json!(run);
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

fn node_json(state: &AppState, id: &NodeId) -> Value {
    let view = state.fleet();
    let health = state.health().snapshot();
    match view.fleet().node(id) {
        Some(node) => json!({
            "id": node.id.as_str(),
            "address": node.address,
            "replicaGroup": node.replica_group.as_str(),
            "state": node.state.as_str(),
            "health": health.get(&node.id).map(|h| h.as_str()),
        }),
        None => json!({ "id": id.as_str() }),
    }
}

/// The fleet as the API shows it.
pub fn fleet_json(state: &AppState, fleet: &Fleet) -> Value {
    let nodes: Vec<Value> = fleet.nodes.iter().map(|n| node_json(state, &n.id)).collect();
    json!({
        "version": fleet.version,
        "replicationFactor": fleet.replication_factor,
        "nodes": nodes,
        "rebalance": fleet.run.as_ref().map(run_json),
    })
}

/// A run as the API shows it: shards done/total, documents copied, rate and ETA.
pub fn run_json(run: &Run) -> Value {
    let total = run.moves.len();
    let done = run.count_at_least(MovePhase::Switched);
    let elapsed = elapsed_seconds(&run.started_at, run.finished_at.as_deref());
    let rate = if elapsed > 0.0 { run.documents_copied as f64 / elapsed } else { 0.0 };
    let eta = if done > 0 && done < total && run.state == RunState::Running {
        Some((elapsed / done as f64 * (total - done) as f64).round() as u64)
    } else {
        None
    };
    let moves: Vec<Value> = run
        .moves
        .iter()
        .filter(|m| m.phase < MovePhase::Cleaned)
        .map(|m| {
            json!({
                "group": m.group.as_str(),
                "shard": m.shard,
                "from": m.from,
                "to": m.to,
                "phase": m.phase,
                "documentsCopied": m.documents_copied,
            })
        })
        .collect();
    json!({
        "id": run.id,
        "state": run.state,
        "reason": run.reason,
        "shardsTotal": total,
        "shardsDone": done,
        "documentsCopied": run.documents_copied,
        "documentsPerSecond": (rate * 10.0).round() / 10.0,
        "copySeconds": (run.copy_seconds * 1000.0).round() / 1000.0,
        "etaSeconds": eta,
        "startedAt": run.started_at,
        "finishedAt": run.finished_at,
        "error": run.error,
        "movesInProgress": moves,
    })
}

fn elapsed_seconds(started: &str, finished: Option<&str>) -> f64 {
    use time::format_description::well_known::Rfc3339;
    let parse = |s: &str| time::OffsetDateTime::parse(s, &Rfc3339).ok();
    let Some(start) = parse(started) else { return 0.0 };
    let end = finished.and_then(parse).unwrap_or_else(time::OffsetDateTime::now_utc);
    (end - start).as_seconds_f64().max(0.0)
}

/// Now, as the run records it (RFC 3339).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn node_id(raw: &str) -> HttpResult<NodeId> {
    NodeId::new(raw).map_err(|_| {
        HttpError::from(ApiError::new(
            ErrorCode::MiroirNodeNotFound,
            format!("node `{raw}` is not in the fleet"),
        ))
    })
}

fn invalid(message: String) -> HttpError {
    HttpError::from(ApiError::new(ErrorCode::MiroirInvalidNode, message))
}
