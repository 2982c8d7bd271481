//! Document deletions: by id and by batch of ids routed to the owners of each id's shard (one
//! request per node), by filter and all documents broadcast to every node.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Method as HttpMethod, Uri};
use axum::response::Response;
use axum::Extension;
use miroir_cluster::{shard_of, NodeBody, QuorumReport};
use miroir_store::TaskRecord;
use miroir_types::{ApiError, ErrorCode, NodeId};
use serde_json::{json, Value};

use super::{accepted, encode_path};
use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::catalog::check_write_uid;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeCall, NodeStep};
use crate::idempotency::{self, Begin};
use crate::tasks::{enqueue_with_change, failed_task, Hints};
use crate::write_hooks;
use crate::{AppState, IndexWriteGuard};

fn deletion_hints() -> Hints {
    Hints {
        node_details: true,
        keep: vec!["providedIds".into(), "originalFilter".into()],
        sum: vec!["deletedDocuments".into()],
        ..Hints::default()
    }
}

async fn missing_index_deletion(
    state: &AppState,
    uid: &str,
    details: Value,
) -> HttpResult<Response> {
    let record =
        failed_task(state, Some(uid), "documentDeletion", details, ApiError::index_not_found(uid))
            .await?;
    Ok(accepted(&record, None))
}

type Deleted = (TaskRecord, Option<QuorumReport>);

/// Sends per-node deletions of `ids` to the owners of their shards.
async fn delete_ids(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    ids: Vec<String>,
    single: bool,
    guard: IndexWriteGuard,
) -> HttpResult<Deleted> {
    let provided = ids.len();
    let details = json!({ "providedIds": provided, "deletedDocuments": Value::Null, "originalFilter": Value::Null });
    let Some(meta) = state.catalog().get_index(uid).await? else {
        let details = json!({ "providedIds": provided, "deletedDocuments": 0, "originalFilter": Value::Null });
        let error = ApiError::index_not_found(uid);
        return Ok((
            failed_task(state, Some(uid), "documentDeletion", details, error).await?,
            None,
        ));
    };
    let assignment = state.assignment(meta.shard_count);
    let mut per_node: BTreeMap<NodeId, Vec<String>> = BTreeMap::new();
    let mut shards = BTreeSet::new();
    let keys = crate::write_hooks::keys_if_wanted(state, &ids);
    for id in ids {
        let shard = shard_of(&id, meta.shard_count);
        shards.insert(shard);
        for (_, owners) in assignment.write_targets(shard) {
            for owner in owners {
                per_node.entry(owner.clone()).or_default().push(id.clone());
            }
        }
    }
    let calls = per_node
        .into_iter()
        .map(|(node, ids)| -> HttpResult<NodeCall> {
            let step = if single {
                NodeStep::new(
                    Method::DELETE,
                    format!("/indexes/{uid}/documents/{}", encode_path(&ids[0])),
                    None,
                )
            } else {
                let body =
                    serde_json::to_vec(&ids).map_err(|e| HttpError::Internal(e.to_string()))?;
                NodeStep::new(
                    Method::POST,
                    format!("/indexes/{uid}/documents/delete-batch"),
                    Some(NodeBody::json(body)),
                )
            };
            Ok(NodeCall { node, steps: vec![step] })
        })
        .collect::<HttpResult<Vec<_>>>()?;
    let outcomes = fanout::run(state, caller.node_auth(), calls).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let report = fanout::check_quorum(state, meta.shard_count, &shards, &enqueued.accepted)?;
    crate::repairs::record_missed(state, uid, meta.shard_count, &shards, &enqueued.accepted, false)
        .await?;
    let change = write_hooks::change(state, uid, || keys.unwrap_or_default(), &shards, false, None);
    let entry = write_hooks::entry(state, change.as_ref());
    let (record, position) = enqueue_with_change(
        state,
        Some(uid),
        "documentDeletion",
        details,
        &deletion_hints(),
        enqueued,
        entry,
    )
    .await?;
    let recorded = write_hooks::wrote(state, &record, change, position);
    drop(guard);
    recorded.await;
    Ok((record, Some(report)))
}

/// `DELETE /indexes/{uid}/documents/{id}`.
pub async fn delete_document(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((uid, id)): Path<(String, String)>,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let guard = state.index_write_guard(&uid).await?;
    let (record, report) = delete_ids(&state, &caller, &uid, vec![id], true, guard).await?;
    Ok(accepted(&record, report.as_ref()))
}

/// `POST /indexes/{uid}/documents/delete-batch`.
pub async fn delete_batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let pending = match idempotency::begin(&state, &headers, &HttpMethod::POST, &uri, &body).await?
    {
        Begin::Replay(task) => return Ok(accepted(&task, None)),
        Begin::Proceed(pending) => pending,
    };
    let Value::Array(values) = json_body(&headers, &body)? else {
        return Err(HttpError::api(
            ErrorCode::BadRequest,
            "Invalid value type: expected an array of document ids.",
        ));
    };
    let mut ids = Vec::with_capacity(values.len());
    for value in values {
        match value {
            Value::String(s) => ids.push(s),
            Value::Number(n) => ids.push(n.to_string()),
            other => {
                return Err(HttpError::api(
                    ErrorCode::InvalidDocumentId,
                    format!(
                        "Invalid value type: expected a string or an integer, but found `{other}`"
                    ),
                ))
            }
        }
    }
    let guard = state.index_write_guard(&uid).await?;
    let (record, report) = delete_ids(&state, &caller, &uid, ids, false, guard).await?;
    if let Some(pending) = pending {
        pending.finish(&state, record.uid).await?;
    }
    Ok(accepted(&record, report.as_ref()))
}

/// Broadcasts a deletion that every node applies to what it holds.
async fn broadcast_deletion(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    step: NodeStep,
    details: Value,
) -> HttpResult<Response> {
    let Some(meta) = state.catalog().get_index(uid).await? else {
        let mut failed = details;
        failed["deletedDocuments"] = json!(0);
        return missing_index_deletion(state, uid, failed).await;
    };
    let guard = state.index_write_guard(uid).await?;
    let outcomes =
        fanout::run(state, caller.node_auth(), fanout::broadcast(state, vec![step])).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let shards = fanout::all_shards(meta.shard_count);
    let report = fanout::check_quorum(state, meta.shard_count, &shards, &enqueued.accepted)?;
    crate::repairs::record_missed(state, uid, meta.shard_count, &shards, &enqueued.accepted, false)
        .await?;
    let kind = enqueued.kind.clone().unwrap_or_else(|| "documentDeletion".to_owned());
    let change = write_hooks::change(state, uid, Vec::new, &shards, false, None);
    let entry = write_hooks::entry(state, change.as_ref());
    let (record, position) =
        enqueue_with_change(state, Some(uid), &kind, details, &deletion_hints(), enqueued, entry)
            .await?;
    let recorded = write_hooks::wrote(state, &record, change, position);
    drop(guard);
    recorded.await;
    Ok(accepted(&record, Some(&report)))
}

/// `POST /indexes/{uid}/documents/delete` (by filter).
pub async fn delete_by_filter(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let parsed = json_body(&headers, &body)?;
    let filter = parsed.get("filter").cloned().unwrap_or(Value::Null);
    let original =
        serde_json::to_string(&filter).map_err(|e| HttpError::Internal(e.to_string()))?;
    let details =
        json!({ "providedIds": 0, "deletedDocuments": Value::Null, "originalFilter": original });
    let step = NodeStep::new(
        Method::POST,
        format!("/indexes/{uid}/documents/delete"),
        Some(NodeBody::json(body.clone())),
    );
    broadcast_deletion(&state, &caller, &uid, step, details).await
}

/// `DELETE /indexes/{uid}/documents` (all).
pub async fn delete_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let details =
        json!({ "providedIds": 0, "deletedDocuments": Value::Null, "originalFilter": Value::Null });
    let step = NodeStep::new(Method::DELETE, format!("/indexes/{uid}/documents"), None);
    broadcast_deletion(&state, &caller, &uid, step, details).await
}
