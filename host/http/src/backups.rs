//! `POST /dumps`, `POST /snapshots` and `POST /indexes/{uid}/compact`: one Miroir task mapped to
//! one task on every node; each node dumps, snapshots or compacts what it holds (together, the
//! whole cluster). The task's details (`dumpUid`, compaction sizes) are the first node's; the
//! others are on their node tasks.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_types::ErrorCode;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeStep};
use crate::tasks::{enqueue, summary, Hints};
use crate::AppState;

async fn on_every_node(
    state: &AppState,
    caller: &Caller,
    (path, index): (&str, Option<&str>),
    kind: &str,
    details: Value,
) -> HttpResult<Response> {
    let step = NodeStep::new(Method::POST, path, None);
    let outcomes =
        fanout::run(state, caller.node_auth(), fanout::broadcast(state, vec![step])).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let missing: Vec<String> = state
        .topology()
        .nodes()
        .filter(|node| !enqueued.accepted.contains(*node))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        // A backup without some node's data would not restore the cluster.
        return Err(HttpError::api(
            ErrorCode::MiroirNoQuorum,
            format!("The {kind} task did not reach node(s) {}.", missing.join(", ")),
        ));
    }
    let hints = Hints { node_details: true, ..Hints::default() };
    let record = enqueue(state, index, kind, details, &hints, enqueued).await?;
    Ok((StatusCode::ACCEPTED, Json(summary(&record))).into_response())
}

/// `POST /dumps`.
pub async fn create_dump(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Response> {
    let details = json!({ "dumpUid": null });
    on_every_node(&state, &caller, ("/dumps", None), "dumpCreation", details).await
}

/// `POST /snapshots`.
pub async fn create_snapshot(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Response> {
    on_every_node(&state, &caller, ("/snapshots", None), "snapshotCreation", Value::Null).await
}

/// `POST /indexes/{uid}/compact`.
pub async fn compact_index(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    crate::catalog::existing(&state, &uid).await?;
    let path = format!("/indexes/{uid}/compact");
    let details = json!({ "preCompactionSize": null, "postCompactionSize": null });
    on_every_node(&state, &caller, (&path, Some(&uid)), "indexCompaction", details).await
}
