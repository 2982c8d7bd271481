//! The settings routes: `/indexes/{uid}/settings` and every sub-route.
//!
//! Changes run as propose (the node-translated patch goes to every node), verify (once the node
//! tasks finished, every node's settings are read back and compared by a canonical hash) and
//! commit (the index's settings version is bumped; answered as `X-Miroir-Settings-Version`).
//! A node whose settings diverge is repaired from the settings most nodes hold ([`drift`]).

pub mod drift;
pub mod faceting;
pub mod translate;
mod verify;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::NodeBody;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::catalog::{check_read_uid, check_write_uid, ensure};
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeStep};
use crate::tasks::{enqueue, summary};
use crate::AppState;
use axum::http::Method;

/// The response header carrying the committed settings version.
pub const SETTINGS_VERSION: &str = "x-miroir-settings-version";

fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

async fn with_version(state: &AppState, uid: &str, mut response: Response) -> Response {
    if let Ok(Some(meta)) = state.catalog().get_index(uid).await {
        if let Ok(value) = HeaderValue::from_str(&meta.settings_version.to_string()) {
            response.headers_mut().insert(SETTINGS_VERSION, value);
        }
    }
    response
}

/// The client-visible settings of `uid`, read from one node.
async fn client_settings(state: &AppState, caller: &Caller, uid: &str) -> HttpResult<Value> {
    let nodes: Vec<_> = state.topology().nodes().cloned().collect();
    let path = format!("/indexes/{uid}/settings");
    let response =
        fanout::first_answer(state, caller.node_auth(), nodes, Method::GET, &path, None).await?;
    if !response.is_success() {
        return Err(
            miroir_types::ForwardedError::new(response.status, response.body.to_vec()).into()
        );
    }
    let mut settings = response.json();
    translate::client_settings(&mut settings);
    if let Some(meta) = state.catalog().get_index(uid).await? {
        faceting::client_settings(&mut settings, &meta);
    }
    Ok(settings)
}

/// `GET /indexes/{uid}/settings`.
pub async fn get_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let settings = client_settings(&state, &caller, &uid).await?;
    Ok(with_version(&state, &uid, Json(settings).into_response()).await)
}

/// `GET /indexes/{uid}/settings/{segment}`.
pub async fn get_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((uid, segment)): Path<(String, String)>,
) -> HttpResult<Response> {
    let Some(field) = translate::field_for_route(&segment) else { return Ok(not_found()) };
    check_read_uid(&uid)?;
    let settings = client_settings(&state, &caller, &uid).await?;
    let value = settings.get(field).cloned().unwrap_or(Value::Null);
    Ok(with_version(&state, &uid, Json(value).into_response()).await)
}

/// `PATCH /indexes/{uid}/settings`.
pub async fn update_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let Value::Object(patch) = json_body(&headers, &body)? else {
        return Err(HttpError::api(
            miroir_types::ErrorCode::BadRequest,
            "Invalid value type: expected an object.",
        ));
    };
    propose(&state, &caller, &uid, patch).await
}

/// `DELETE /indexes/{uid}/settings`.
pub async fn reset_all(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    propose(&state, &caller, &uid, translate::reset_all_patch()).await
}

/// `PUT`/`PATCH /indexes/{uid}/settings/{segment}`.
pub async fn update_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((uid, segment)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let Some(field) = translate::field_for_route(&segment) else { return Ok(not_found()) };
    check_write_uid(&uid)?;
    let value = json_body(&headers, &body)?;
    let mut patch = Map::new();
    patch.insert(field.to_owned(), value);
    propose(&state, &caller, &uid, patch).await
}

/// `DELETE /indexes/{uid}/settings/{segment}`.
pub async fn reset_one(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((uid, segment)): Path<(String, String)>,
) -> HttpResult<Response> {
    let Some(field) = translate::field_for_route(&segment) else { return Ok(not_found()) };
    check_write_uid(&uid)?;
    let mut patch = Map::new();
    patch.insert(field.to_owned(), Value::Null);
    propose(&state, &caller, &uid, patch).await
}

/// Propose: sends the translated patch to every node and records the task; verify and commit
/// run in the background once the node tasks finish.
async fn propose(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    patch: Map<String, Value>,
) -> HttpResult<Response> {
    let (meta, created) = ensure(state, uid).await?;
    let _guard = state.index_write_guard(uid).await?;
    let mut node = translate::to_node(&patch, created);
    let max_values = match faceting::requested(&patch) {
        faceting::Requested::Untouched => None,
        faceting::Requested::Value(value) => Some(value),
        faceting::Requested::Current if created => Some(faceting::DEFAULT_MAX_VALUES),
        faceting::Requested::Current => Some(current_max_values(state, caller, uid, &meta).await?),
    };
    if let Some(value) = max_values {
        faceting::translate(&patch, &mut node.patch, &mut node.hints, value);
    }
    let body = serde_json::to_vec(&Value::Object(node.patch.clone()))
        .map_err(|e| HttpError::Internal(e.to_string()))?;
    let step = NodeStep::new(
        Method::PATCH,
        format!("/indexes/{uid}/settings"),
        Some(NodeBody::json(body)),
    );
    let outcomes =
        fanout::run(state, caller.node_auth(), fanout::broadcast(state, vec![step])).await;
    let enqueued = match fanout::collect_enqueued(&outcomes) {
        Ok(enqueued) => enqueued,
        Err(error) => {
            if created {
                let _ = state.catalog().delete_index(uid).await;
                state.read_catalog().forget(uid);
            }
            return Err(error);
        }
    };
    let shards = fanout::all_shards(meta.shard_count);
    let report = fanout::check_quorum(state, meta.shard_count, &shards, &enqueued.accepted)?;
    if !created {
        // A node that missed the change gets it back from the repair worker; one still missing
        // the index gets it, with these settings, through convergence instead.
        let mut covered = enqueued.accepted.clone();
        covered.extend(
            state
                .topology()
                .nodes()
                .filter(|node| state.convergence().is_pending(node, uid))
                .cloned(),
        );
        crate::repairs::record_missed(state, uid, meta.shard_count, &shards, &covered, true)
            .await?;
    }
    if created {
        // This update creates the index (with the bookkeeping settings) on the nodes that took
        // it; the others get it later.
        let missed: Vec<_> = crate::convergence::missed(&outcomes).collect();
        for node in outcomes.keys().filter(|node| !missed.contains(node)) {
            state.convergence().settle(node, uid);
        }
        crate::convergence::record_pending(state, uid, missed);
    }
    if let Some(value) = max_values {
        record_max_values(state, uid, value).await?;
    }
    let record =
        enqueue(state, Some(uid), "settingsUpdate", Value::Object(patch), &node.hints, enqueued)
            .await?;
    verify::spawn(state.clone(), uid.to_owned(), record.uid);
    let mut response = (StatusCode::ACCEPTED, Json(summary(&record))).into_response();
    fanout::mark_degraded(&mut response, &report);
    Ok(with_version(state, uid, response).await)
}

/// The client's current `maxValuesPerFacet` of an existing index: recorded by Miroir, or, when
/// Miroir never translated it, what the nodes hold.
async fn current_max_values(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    meta: &miroir_store::IndexMeta,
) -> HttpResult<u64> {
    if let Some(value) = faceting::client_value(meta) {
        return Ok(value);
    }
    let settings = client_settings(state, caller, uid).await?;
    Ok(settings
        .pointer("/faceting/maxValuesPerFacet")
        .and_then(Value::as_u64)
        .unwrap_or(faceting::DEFAULT_MAX_VALUES))
}

/// Records the client's `maxValuesPerFacet` of `uid` in its metadata (under the write guard).
async fn record_max_values(state: &AppState, uid: &str, value: u64) -> HttpResult<()> {
    let Some(mut meta) = state.catalog().get_index(uid).await? else { return Ok(()) };
    if faceting::client_value(&meta) == Some(value) {
        return Ok(());
    }
    faceting::record(&mut meta, value);
    meta.updated_at = time::OffsetDateTime::now_utc();
    state.catalog().put_index(&meta).await?;
    state.read_catalog().forget(uid);
    Ok(())
}
