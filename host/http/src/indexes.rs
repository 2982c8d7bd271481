//! Index management: create, get, list, update, delete, swap — broadcast to every node of every
//! group, with the index's shard count and primary key recorded in the task store's catalog.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::collections::BTreeMap;
use std::time::Duration;

use miroir_cluster::{NodeAuth, NodeBody};
use miroir_store::{IndexMeta, StoreError};
use miroir_types::{ApiError, ErrorCode, IndexUid, NodeId};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::bookkeeping::SHARD_FIELD;
use crate::catalog::{check_not_reserved, check_read_uid, check_write_uid, existing};
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeCall, NodeStep};
use crate::tasks::view::date;
use crate::tasks::{enqueue, failed_task, summary, Hints};
use crate::AppState;
use axum::http::Method;

fn index_object(meta: &IndexMeta) -> Value {
    json!({
        "uid": meta.uid,
        "createdAt": date(meta.created_at),
        "updatedAt": date(meta.updated_at),
        "primaryKey": meta.primary_key,
    })
}

fn accepted(record: &miroir_store::TaskRecord) -> Response {
    (StatusCode::ACCEPTED, Json(summary(record))).into_response()
}

fn accepted_degraded(
    record: &miroir_store::TaskRecord,
    report: &miroir_cluster::QuorumReport,
) -> Response {
    let mut response = accepted(record);
    fanout::mark_degraded(&mut response, report);
    response
}

/// `GET /indexes/{uid}`.
pub async fn get_index(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    Ok(Json(index_object(&existing(&state, &uid).await?)).into_response())
}

fn query_number(
    query: Option<&str>,
    name: &str,
    default: usize,
    code: ErrorCode,
) -> HttpResult<usize> {
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == name {
            return value.parse().map_err(|_| {
                HttpError::api(code, format!("Invalid value in parameter `{name}`: could not parse `{value}` as a positive integer"))
            });
        }
    }
    Ok(default)
}

/// `GET /indexes`: from the catalog, sorted by uid as Meilisearch sorts them; an API key sees
/// only the indexes it may access.
pub async fn list_indexes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    let offset = query_number(query.as_deref(), "offset", 0, ErrorCode::BadRequest)?;
    let limit = query_number(query.as_deref(), "limit", 20, ErrorCode::BadRequest)?;
    let mut all = state.catalog().list_indexes().await?;
    all.retain(|meta| caller.sees_index(&meta.uid));
    let results: Vec<Value> = all.iter().skip(offset).take(limit).map(index_object).collect();
    Ok(Json(json!({ "results": results, "offset": offset, "limit": limit, "total": all.len() }))
        .into_response())
}

/// `POST /indexes`: creates the index on every node, makes `_miroir_shard` filterable there,
/// and records S and the primary key. Rolled back everywhere if a node refuses it or some shard
/// has no group at quorum; nodes that are down or fail get it later ([`crate::convergence`]),
/// and the answer carries `X-Miroir-Degraded`.
pub async fn create_index(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let body = json_body(&headers, &body)?;
    let uid = match body.get("uid") {
        None => return Err(HttpError::api(ErrorCode::MissingIndexUid, "Missing field `uid`")),
        Some(Value::String(uid)) => IndexUid::new(uid.as_str()).map_err(|e| {
            HttpError::api(ErrorCode::InvalidIndexUid, format!("Invalid value at `.uid`: {e}"))
        })?,
        Some(other) => {
            return Err(HttpError::api(
                ErrorCode::InvalidIndexUid,
                format!("Invalid value type at `.uid`: expected a string, but found `{other}`"),
            ))
        }
    };
    let uid = uid.as_str();
    check_not_reserved(uid)?;
    let primary_key = match body.get("primaryKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(other) => {
            return Err(HttpError::api(
                ErrorCode::InvalidIndexPrimaryKey,
                format!(
                    "Invalid value type at `.primaryKey`: expected a string, but found `{other}`"
                ),
            ))
        }
    };
    let details = json!({ "primaryKey": primary_key });
    if state.catalog().get_index(uid).await?.is_some() {
        let error =
            ApiError::new(ErrorCode::IndexAlreadyExists, format!("Index `{uid}` already exists."));
        return Ok(accepted(
            &failed_task(&state, Some(uid), "indexCreation", details, error).await?,
        ));
    }
    let now = OffsetDateTime::now_utc();
    let meta = IndexMeta::new(uid, state.config().shards, primary_key.clone(), now);
    match state.catalog().create_index(&meta).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let error = ApiError::new(
                ErrorCode::IndexAlreadyExists,
                format!("Index `{uid}` already exists."),
            );
            return Ok(accepted(
                &failed_task(&state, Some(uid), "indexCreation", details, error).await?,
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let create_body = serde_json::to_vec(&json!({ "uid": uid, "primaryKey": primary_key }))
        .map_err(|e| HttpError::Internal(e.to_string()))?;
    let filterable = serde_json::to_vec(&json!({ "filterableAttributes": [SHARD_FIELD] }))
        .map_err(|e| HttpError::Internal(e.to_string()))?;
    let create = NodeStep::new(Method::POST, "/indexes", Some(NodeBody::json(create_body)));
    let bookkeeping = NodeStep::bookkeeping(
        Method::PATCH,
        format!("/indexes/{uid}/settings"),
        Some(NodeBody::json(filterable)),
    );
    let calls: Vec<NodeCall> = state
        .topology()
        .nodes()
        .map(|node| NodeCall { node: node.clone(), steps: vec![create.clone()] })
        .collect();
    let outcomes = fanout::run(&state, caller.node_auth(), calls).await;
    // A node that refuses the creation (4xx) refuses it for the client; nodes that are down or
    // fail (5xx) get it later (`convergence`), as long as every shard has a group at quorum.
    let checked = fanout::collect_enqueued(&outcomes).and_then(|enqueued| {
        let shards = fanout::all_shards(meta.shard_count);
        let report = fanout::check_quorum(&state, meta.shard_count, &shards, &enqueued.accepted)?;
        Ok((enqueued, report))
    });
    let (enqueued, report) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            rollback(&state, uid, &outcomes).await;
            return Err(match error {
                HttpError::Api(api) if api.code() == ErrorCode::MiroirNoQuorum => HttpError::api(
                    ErrorCode::MiroirNoQuorum,
                    format!("Index `{uid}` could not be created on enough nodes; the creation was rolled back."),
                ),
                other => other,
            });
        }
    };
    // The bookkeeping settings go after the creation on each node (nodes run tasks in order).
    let took: Vec<NodeCall> = enqueued
        .accepted
        .iter()
        .map(|node| NodeCall { node: node.clone(), steps: vec![bookkeeping.clone()] })
        .collect();
    let settled = fanout::run(&state, caller.node_auth(), took).await;
    let missed: Vec<_> = state
        .topology()
        .nodes()
        .filter(|node| !matches!(settled.get(*node), Some(Ok(r)) if r.is_success()))
        .cloned()
        .collect();
    for node in state.topology().nodes().filter(|node| !missed.contains(node)) {
        state.convergence().settle(node, uid);
    }
    crate::convergence::record_pending(&state, uid, missed);
    let record =
        enqueue(&state, Some(uid), "indexCreation", details, &Hints::default(), enqueued).await?;
    Ok(accepted_degraded(&record, &report))
}

async fn rollback(
    state: &AppState,
    uid: &str,
    outcomes: &std::collections::BTreeMap<miroir_types::NodeId, fanout::NodeOutcome>,
) {
    let _ = state.catalog().delete_index(uid).await;
    state.read_catalog().forget(uid);
    state.convergence().forget_index(uid);
    let created: Vec<NodeCall> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Ok(r) if r.is_success()))
        .map(|(node, _)| NodeCall {
            node: node.clone(),
            steps: vec![NodeStep::bookkeeping(Method::DELETE, format!("/indexes/{uid}"), None)],
        })
        .collect();
    if !created.is_empty() {
        tracing::warn!(index = %uid, nodes = created.len(), "rolling back a partial index creation");
        let _ = fanout::run(state, miroir_cluster::NodeAuth::NodeKey, created).await;
    }
}

/// `PATCH /indexes/{uid}`: the primary key.
pub async fn update_index(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let body = json_body(&headers, &raw)?;
    let meta = existing(&state, &uid).await?;
    let primary_key = body.get("primaryKey").and_then(Value::as_str).map(str::to_owned);
    // A new `uid` renames the index (see `index_rename`); the nodes check the rest.
    let new_uid = match body.get("uid").and_then(Value::as_str) {
        Some(new_uid) if new_uid != uid => Some(check_write_uid(new_uid)?.as_str().to_owned()),
        _ => None,
    };
    // A new key for an index that has one takes effect only if every node applies it (one node
    // does while the index is empty): writes wait meanwhile, so none is routed by a stale key.
    let changes_key =
        primary_key.is_some() && meta.primary_key.is_some() && primary_key != meta.primary_key;
    let _guard = if changes_key { Some(state.index_write_guard(&uid).await?) } else { None };
    let step =
        NodeStep::new(Method::PATCH, format!("/indexes/{uid}"), Some(NodeBody::json(raw.clone())));
    let outcomes =
        fanout::run(&state, caller.node_auth(), fanout::broadcast(&state, vec![step])).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let key_applied = changes_key && node_tasks_succeeded(&state, &enqueued.node_tasks).await;
    let report = fanout::check_quorum(
        &state,
        meta.shard_count,
        &fanout::all_shards(meta.shard_count),
        &enqueued.accepted,
    )?;
    if primary_key.is_some() && (meta.primary_key.is_none() || key_applied) {
        // Re-read so a settings version bumped meanwhile is not overwritten.
        if let Some(mut fresh) = state.catalog().get_index(&uid).await? {
            fresh.primary_key = primary_key.clone();
            fresh.updated_at = OffsetDateTime::now_utc();
            state.catalog().put_index(&fresh).await?;
            state.read_catalog().forget(&uid);
        }
    }
    let details = match &new_uid {
        Some(new_uid) => {
            json!({ "primaryKey": primary_key, "oldIndexUid": uid, "newIndexUid": new_uid })
        }
        None => json!({ "primaryKey": primary_key }),
    };
    let record =
        enqueue(&state, Some(&uid), "indexUpdate", details, &Hints::default(), enqueued).await?;
    Ok(accepted_degraded(&record, &report))
}

/// Whether every node task finished with `succeeded`, polled for a bounded time (a node task
/// still running at the deadline counts as not succeeded).
async fn node_tasks_succeeded(state: &AppState, tasks: &BTreeMap<String, u64>) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (node, task) in tasks {
        let Ok(node) = NodeId::new(node.clone()) else { return false };
        let Ok(client) = state.client(&node) else { return false };
        let path = format!("/tasks/{task}");
        loop {
            let status = match client.send(Method::GET, &path, None, NodeAuth::NodeKey).await {
                Ok(response) if response.is_success() => {
                    response.json()["status"].as_str().map(str::to_owned)
                }
                _ => None,
            };
            match status.as_deref() {
                Some("succeeded") => break,
                Some("failed" | "canceled") => return false,
                _ if tokio::time::Instant::now() >= deadline => return false,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    true
}

/// `DELETE /indexes/{uid}`.
pub async fn delete_index(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let Some(meta) = state.catalog().get_index(&uid).await? else {
        let details = json!({ "deletedDocuments": 0 });
        let record = failed_task(
            &state,
            Some(&uid),
            "indexDeletion",
            details,
            ApiError::index_not_found(&uid),
        )
        .await?;
        return Ok(accepted(&record));
    };
    let _guard = state.index_write_guard(&uid).await?;
    let step = NodeStep::new(Method::DELETE, format!("/indexes/{uid}"), None);
    let outcomes =
        fanout::run(&state, caller.node_auth(), fanout::broadcast(&state, vec![step])).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let report = fanout::check_quorum(
        &state,
        meta.shard_count,
        &fanout::all_shards(meta.shard_count),
        &enqueued.accepted,
    )?;
    state.catalog().delete_index(&uid).await?;
    state.read_catalog().forget(&uid);
    state.convergence().forget_index(&uid);
    crate::convergence::release_holds(&state, &uid).await;
    let hints = Hints { sum: vec!["deletedDocuments".into()], ..Hints::default() };
    let details = json!({ "deletedDocuments": Value::Null });
    let record = enqueue(&state, Some(&uid), "indexDeletion", details, &hints, enqueued).await?;
    Ok(accepted_degraded(&record, &report))
}

/// `POST /swap-indexes`: broadcast, and the catalog entries are swapped.
pub async fn swap_indexes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> HttpResult<Response> {
    let body = json_body(&headers, &raw)?;
    let Some(swaps) = body.as_array() else {
        return Err(HttpError::api(
            ErrorCode::InvalidSwapIndexes,
            "Invalid value type: expected an array.",
        ));
    };
    let mut pairs = Vec::new();
    for swap in swaps {
        let names: Vec<String> = swap
            .get("indexes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let rename = swap.get("rename").and_then(Value::as_bool).unwrap_or(false);
        match names.as_slice() {
            [a, b] => {
                check_not_reserved(a)?;
                check_not_reserved(b)?;
                pairs.push((a.clone(), b.clone(), rename))
            }
            _ => {
                return Err(HttpError::api(
                    ErrorCode::InvalidSwapIndexes,
                    "Invalid value at `.indexes`: two index uids are expected.",
                ))
            }
        }
    }
    let step = NodeStep::new(Method::POST, "/swap-indexes", Some(NodeBody::json(raw.clone())));
    let outcomes =
        fanout::run(&state, caller.node_auth(), fanout::broadcast(&state, vec![step])).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    if enqueued.accepted.len() != state.topology().nodes().count() {
        return Err(HttpError::api(ErrorCode::MiroirNoQuorum, "Not every node accepted the swap."));
    }
    for (a, b, rename) in &pairs {
        if *rename {
            rename_in_catalog(&state, a, b).await?;
        } else {
            swap_catalog(&state, a, b).await?;
        }
    }
    let details = json!({ "swaps": body });
    let record = enqueue(&state, None, "indexSwap", details, &Hints::default(), enqueued).await?;
    Ok(accepted(&record))
}

/// A swap with `rename: true`: `a` takes the name `b`, which must be free (else the nodes fail
/// the task and nothing changes here).
async fn rename_in_catalog(state: &AppState, a: &str, b: &str) -> HttpResult<()> {
    if state.catalog().get_index(b).await?.is_some() {
        return Ok(());
    }
    let Some(mut meta) = state.catalog().get_index(a).await? else { return Ok(()) };
    meta.uid = b.to_owned();
    state.catalog().create_index(&meta).await?;
    state.catalog().delete_index(a).await?;
    for uid in [a, b] {
        state.read_catalog().forget(uid);
        state.convergence().forget_index(uid);
        crate::convergence::release_holds(state, uid).await;
    }
    Ok(())
}

async fn swap_catalog(state: &AppState, a: &str, b: &str) -> HttpResult<()> {
    let (Some(mut meta_a), Some(mut meta_b)) =
        (state.catalog().get_index(a).await?, state.catalog().get_index(b).await?)
    else {
        // Nodes fail the swap task for a missing index; nothing to swap here.
        return Ok(());
    };
    std::mem::swap(&mut meta_a.uid, &mut meta_b.uid);
    state.catalog().put_index(&meta_a).await?;
    state.catalog().put_index(&meta_b).await?;
    for uid in [&meta_a.uid, &meta_b.uid] {
        state.read_catalog().forget(uid);
        state.convergence().forget_index(uid);
        crate::convergence::release_holds(state, uid).await;
    }
    Ok(())
}
