//! Document routes: writes split by shard into one batched request per node, deletes routed to
//! the owners (by id) or broadcast (by filter, all), reads from one replica of the owner.

pub mod batch;
pub(crate) mod browse;
mod delete;
mod edit;
pub mod parse;
pub mod raw;
mod sorted;
mod undo;

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::{
    in_turn, shard_of, Coverage, NodeBody, NodeRequest, NodeResponse, QuorumReport, Turn,
};
use miroir_store::TaskRecord;
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId, ShardId};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::body::RawBody;
use crate::bookkeeping::SHARD_FIELD;
use crate::catalog::{check_read_uid, check_write_uid, ensure, existing};
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeCall, NodeStep};
use crate::idempotency::{self, Begin};
use crate::tasks::{enqueue_with_change, failed_task, summary, Hints};
use crate::write_hooks;
use crate::AppState;
use axum::http::Method;

pub use browse::{browse_get, browse_post};
pub use delete::{delete_all, delete_batch, delete_by_filter, delete_document};
pub use edit::edit_by_function;

pub use crate::fanout::DEGRADED;

pub(crate) fn accepted(record: &TaskRecord, report: Option<&QuorumReport>) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(summary(record))).into_response();
    if let Some(report) = report {
        fanout::mark_degraded(&mut response, report);
    }
    response
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Removes bookkeeping from a document or hit (also inside `_formatted` and `_matchesPosition`).
pub fn strip_document(document: &mut Value) {
    if let Value::Object(map) = document {
        map.retain(|k, _| !crate::bookkeeping::is_reserved(k));
        for nested in ["_formatted", "_matchesPosition"] {
            if let Some(Value::Object(inner)) = map.get_mut(nested) {
                inner.retain(|k, _| !crate::bookkeeping::is_reserved(k));
            }
        }
    }
}

/// `POST /indexes/{uid}/documents` (replace).
pub async fn add_or_replace(
    state: State<AppState>,
    caller: Extension<Caller>,
    uid: Path<String>,
    query: RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> HttpResult<Response> {
    write(state, caller, uid, query, uri, headers, body, HttpMethod::POST).await
}

/// `PUT /indexes/{uid}/documents` (update).
pub async fn add_or_update(
    state: State<AppState>,
    caller: Extension<Caller>,
    uid: Path<String>,
    query: RawQuery,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> HttpResult<Response> {
    write(state, caller, uid, query, uri, headers, body, HttpMethod::PUT).await
}

fn content_format(headers: &HeaderMap) -> HttpResult<parse::Format> {
    const ACCEPTED: &str = "Accepted values for the Content-Type header are: `application/json`, \
                            `application/x-ndjson`, `text/csv`";
    let Some(content_type) = headers.get(header::CONTENT_TYPE) else {
        return Err(HttpError::api(
            ErrorCode::MissingContentType,
            format!("A Content-Type header is missing. {ACCEPTED}"),
        ));
    };
    let content_type = content_type.to_str().unwrap_or_default();
    parse::Format::from_content_type(content_type).ok_or_else(|| {
        HttpError::api(
            ErrorCode::InvalidContentType,
            format!("The Content-Type `{content_type}` is invalid. {ACCEPTED}"),
        )
    })
}

#[allow(clippy::too_many_arguments)]
async fn write(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
    method: HttpMethod,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let format = content_format(&headers)?;
    let pending = match idempotency::begin(&state, &headers, &method, &uri, &body).await? {
        Begin::Replay(task) => return Ok(accepted(&task, None)),
        Begin::Proceed(pending) => pending,
    };
    let (record, report) =
        write_inner(&state, &caller, &uid, query.as_deref(), body, format, &method).await?;
    if let Some(pending) = pending {
        pending.finish(&state, record.uid).await?;
    }
    if let Some(session) = crate::session::session_id(&state, &headers) {
        crate::session::record_write(&state, &session, record.uid, report.as_ref()).await?;
    }
    Ok(accepted(&record, report.as_ref()))
}

/// The write itself: parse, resolve, route, fan out, record the task.
async fn write_inner(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    query: Option<&str>,
    body: axum::body::Bytes,
    format: parse::Format,
    method: &HttpMethod,
) -> HttpResult<(TaskRecord, Option<QuorumReport>)> {
    let delimiter =
        query_param(query, "csvDelimiter").and_then(|d| d.bytes().next()).unwrap_or(b',');
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::api(
            ErrorCode::MissingPayload,
            format!("A {} payload is missing.", format.name()),
        ));
    }
    let payload = batch::Payload::read(body, format, delimiter)
        .map_err(|e| HttpError::api(ErrorCode::MalformedPayload, e.to_string()))?;
    batch::check_reserved(&payload)?;
    let received = payload.len();
    let kind = "documentAdditionOrUpdate";
    let failed_details = json!({ "receivedDocuments": received, "indexedDocuments": 0 });

    let guard = state.index_write_guard(uid).await?;
    let (meta, created) = ensure(state, uid).await?;
    let query_key = query_param(query, "primaryKey");
    if let (Some(index_key), Some(query_key)) = (&meta.primary_key, &query_key) {
        if index_key != query_key {
            let error = ApiError::new(
                ErrorCode::IndexPrimaryKeyAlreadyExists,
                format!("Index `{uid}`: Index already has a primary key: `{index_key}`."),
            );
            let record = fail_write(state, uid, created, failed_details, error).await?;
            return Ok((record, None));
        }
    }
    let primary_key = match batch::resolve_primary_key(
        meta.primary_key.as_deref(),
        query_key.as_deref(),
        payload.first().as_ref(),
    ) {
        batch::PrimaryKey::Known(key) => key,
        batch::PrimaryKey::Ambiguous(error) => {
            let record = fail_write(state, uid, created, failed_details, error).await?;
            return Ok((record, None));
        }
        batch::PrimaryKey::Missing => {
            // As one node: the write is accepted and its task fails.
            let error = batch::no_primary_key_candidate();
            let record = fail_write(state, uid, created, failed_details, error).await?;
            return Ok((record, None));
        }
    };
    let assignment = state.assignment(meta.shard_count);
    let written = crate::write_hooks::documents_if_wanted(state, &payload);
    let routed = match batch::route(&payload, &primary_key, &assignment) {
        Ok(routed) => routed,
        Err(error) => {
            let record = fail_write(state, uid, created, failed_details, error).await?;
            return Ok((record, None));
        }
    };
    if let Err(error) = undo::quorum_possible(state, meta.shard_count, &routed.shards) {
        if created {
            // Nothing was sent: forgetting the catalog entry is the whole undo.
            state.store().delete_index(uid).await?;
            state.read_catalog().forget(uid);
        }
        return Err(error);
    }
    // An index created by this write gets its bookkeeping settings on every node right before
    // the documents (nodes run their tasks in order).
    let settings_step = if created {
        let body = serde_json::to_vec(&json!({ "filterableAttributes": [SHARD_FIELD] }))
            .map_err(|e| HttpError::Internal(e.to_string()))?;
        Some(NodeStep::bookkeeping(
            Method::PATCH,
            format!("/indexes/{uid}/settings"),
            Some(NodeBody::json(body)),
        ))
    } else {
        None
    };
    let mut path = format!("/indexes/{uid}/documents?primaryKey={}", encode(&primary_key));
    // Each document goes to its shard's owners, which hold it if it exists: they decide.
    if let Some(skip) = query_param(query, "skipCreation") {
        path.push_str(&format!("&skipCreation={}", encode(&skip)));
    }
    let node_method = if *method == HttpMethod::PUT { Method::PUT } else { Method::POST };
    let mut calls = Vec::new();
    let targets: BTreeSet<NodeId> = routed.per_node.keys().cloned().collect();
    let mut batches = routed.per_node;
    for node in state.topology().nodes() {
        let mut steps: Vec<NodeStep> = settings_step.iter().cloned().collect();
        if let Some(batch) = batches.remove(node) {
            steps.push(NodeStep::new(node_method.clone(), path.clone(), Some(batch)));
        }
        if !steps.is_empty() {
            calls.push(NodeCall { node: node.clone(), steps });
        }
    }
    if !created {
        // A node that missed the creation, or lost the index, must not auto-create it bare.
        crate::convergence::ensure_on_nodes(state, &meta, &targets).await;
    }
    let mut outcomes = fanout::run(state, caller.node_auth(), calls).await;
    if created {
        let missed: Vec<NodeId> = crate::convergence::missed(&outcomes).collect();
        for node in outcomes.keys().filter(|node| !missed.contains(node)) {
            state.convergence().settle(node, uid);
        }
        crate::convergence::record_pending(state, uid, missed);
    }
    for node in crate::convergence::missed(&outcomes).filter(|node| targets.contains(node)) {
        // A node pending for the index lacks this batch when the index reaches it.
        state.convergence().missed_documents(&node, uid);
    }
    crate::convergence::after_write(state, &meta, &outcomes).await;
    outcomes.retain(|node, _| targets.contains(node));
    let checked = match fanout::collect_enqueued(&outcomes).and_then(|enqueued| {
        let report =
            fanout::check_quorum(state, meta.shard_count, &routed.shards, &enqueued.accepted)?;
        Ok((enqueued, report))
    }) {
        // Owners that missed the write get a durable repair record before the answer.
        Ok((enqueued, report)) => crate::repairs::record_missed(
            state,
            uid,
            meta.shard_count,
            &routed.shards,
            &enqueued.accepted,
            false,
        )
        .await
        .map(|()| (enqueued, report)),
        Err(error) => Err(error),
    };
    let (enqueued, report) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            // Refused (by a node, for lack of quorum, or a repair record not stored): leave
            // nothing the client can see.
            if created {
                undo::forget_created_index(state, uid).await;
            } else {
                undo::delete_refused_documents(
                    state,
                    uid,
                    meta.shard_count,
                    &routed.ids,
                    &outcomes,
                )
                .await;
            }
            return Err(error);
        }
    };
    if meta.primary_key.is_none() {
        // Re-read: `put_index` replaces the record, and a settings commit may have bumped the
        // version since `meta` was read.
        if let Some(mut fresh) = state.catalog().get_index(uid).await? {
            fresh.primary_key = Some(primary_key);
            fresh.updated_at = time::OffsetDateTime::now_utc();
            state.catalog().put_index(&fresh).await?;
            state.read_catalog().forget(uid);
        }
    }
    let details = json!({ "receivedDocuments": received, "indexedDocuments": Value::Null });
    let hints = Hints { indexed_from_received: true, ..Hints::default() };
    let keys = || routed.ids.values().flatten().cloned().collect();
    let partial = *method == HttpMethod::PUT;
    let change = write_hooks::change(state, uid, keys, &routed.shards, partial, written);
    let entry = write_hooks::entry(state, change.as_ref());
    let (record, position) =
        enqueue_with_change(state, Some(uid), kind, details, &hints, enqueued, entry).await?;
    let recorded = write_hooks::wrote(state, &record, change, position);
    // The next write to the index goes ahead while this one's change event is stored.
    drop(guard);
    recorded.await;
    Ok((record, Some(report)))
}

/// Records a write that failed before any node work. An index this write was about to create is
/// forgotten again: as on one node, a failed first write leaves no index behind.
async fn fail_write(
    state: &AppState,
    uid: &str,
    created: bool,
    details: Value,
    error: ApiError,
) -> HttpResult<TaskRecord> {
    if created {
        state.catalog().delete_index(uid).await?;
        state.read_catalog().forget(uid);
    }
    failed_task(state, Some(uid), "documentAdditionOrUpdate", details, error).await
}

/// `GET /indexes/{uid}/documents/{id}`: from the owners of the document's shard, asked in the
/// order a read ranks them until one has it. An owner that answers `document_not_found`, fails
/// or does not hold Miroir's copy of the index (stale) does not decide: the document is missing
/// only when every owner that answered says so. When some owner could not answer, the
/// `document_not_found` carries `X-Miroir-Degraded`; when none answered, the read fails with
/// `miroir_shard_unavailable`.
pub async fn get_document(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((uid, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let meta = existing(&state, &uid).await?;
    let assignment = state.assignment(meta.shard_count);
    let shard = shard_of(&id, meta.shard_count);
    let owners: Vec<NodeId> = state
        .read_view(&uid)
        .rank(assignment.write_targets(shard).flat_map(|(_, owners)| owners.iter()));
    let mut path = format!("/indexes/{uid}/documents/{}", encode_path(&id));
    if let Some(query) = query {
        path.push('?');
        path.push_str(&query);
    }
    let request = NodeRequest { method: Method::GET, path, body: None };
    let transport = crate::search::ClientTransport::new(&state, caller.node_auth());
    let view = state.read_view(&uid);
    // An owner that lacks the document (missed a write, or was emptied) does not decide.
    let judge = |response: &NodeResponse| {
        let lacks =
            !response.is_success() && response.json()["code"] == ErrorCode::DocumentNotFound.name();
        if lacks {
            Turn::Pass
        } else {
            Turn::Take
        }
    };
    let read = in_turn(&transport, Some(&view), &owners, &request, &judge).await;
    for failure in &read.failures {
        let (node, verdict) = (&failure.node, failure.outcome);
        let error = failure.error.as_ref().map(ToString::to_string);
        tracing::warn!(%node, index = %uid, ?verdict, status = ?failure.status, ?error,
            "a node failed a document read; asking a replica");
        state.read_stats().node_failed(node);
    }
    match read.answer {
        Some((_, response)) if response.is_success() => {
            let mut document = response.json();
            strip_document(&mut document);
            return Ok(Json(document).into_response());
        }
        // The client's own error (bad `fields`...): every owner would say it.
        Some((_, response)) => {
            return Err(ForwardedError::new(response.status, response.body.to_vec()).into())
        }
        None => {}
    }
    let not_found = read.passed.into_iter().next().map(|(_, response)| response);
    let unanswered = !read.failures.is_empty();
    let lacking: BTreeSet<ShardId> = unanswered.then_some(shard).into_iter().collect();
    let coverage = crate::search::coverage(&state, &lacking);
    let strict = matches!(coverage, Coverage::Unavailable(_));
    let Some(response) = not_found.filter(|_| !strict) else {
        return Err(HttpError::api(
            ErrorCode::MiroirShardUnavailable,
            format!("Shard {} of index `{uid}` has no replica answering.", shard.get()),
        ));
    };
    let mut response =
        HttpError::from(ForwardedError::new(response.status, response.body.to_vec()))
            .into_response();
    crate::search::mark_degraded(&mut response, &coverage);
    Ok(response)
}

pub(crate) fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
