//! `POST /indexes/{uid}/documents/edit`: documents edited by a Rhai function (experimental
//! feature `editDocumentsByFunction`), broadcast to every node like a deletion by filter.
//!
//! Each node runs the function over the documents it holds that the client's `filter` matches
//! (the filter is sent as the client wrote it, combined with nothing). Every document on a node
//! carries the bookkeeping field `_miroir_shard`, and a function may replace the whole `doc`
//! (`doc = #{id: doc.id, title: "x"}`) or write that field: the nodes get the client's
//! function wrapped ([`wrapped`]) so that the field is saved before it runs and put back after
//! it, unless the document was deleted (`doc = ()`). The task shows the client's own function.
//! `editedDocuments` and `deletedDocuments` are summed over one replica group and divided by
//! the replication factor, as a deletion by filter counts (each document once).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::Extension;
use bytes::Bytes;
use miroir_cluster::{NodeAuth, NodeBody};
use miroir_types::ApiError;
use serde_json::{json, Value};

use super::accepted;
use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::bookkeeping::SHARD_FIELD;
use crate::catalog::check_write_uid;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeStep};
use crate::tasks::{enqueue_with_change, failed_task, Hints};
use crate::write_hooks;
use crate::AppState;

/// The experimental feature that gates the route on the nodes.
const FEATURE: &str = "editDocumentsByFunction";

/// The Rhai variable that holds the document's bookkeeping while the client's function runs.
const SAVED: &str = "__miroir_saved_shard";

/// The function the nodes run: the client's, between saving `doc._miroir_shard` and putting it
/// back when `doc` is still a map (not deleted) and held one. The client's text starts on the
/// first line after the saving statement (so its line numbers do not move) and the restoring
/// statement starts on a line of its own (a trailing `//` comment or a missing `;` cannot swallow
/// it). A `return` at the top level of the client's function ends the script before the
/// restoring statement: a document it replaced whole then loses its bookkeeping.
pub fn wrapped(function: &str) -> String {
    format!(
        "let {SAVED} = doc.{SHARD_FIELD}; {function}\n;if type_of(doc) == \"map\" && \
         type_of({SAVED}) != \"()\" {{ doc.{SHARD_FIELD} = {SAVED}; }}"
    )
}

fn edition_hints() -> Hints {
    Hints {
        node_details: true,
        // The nodes ran the wrapped function: the client sees its own.
        keep: vec!["function".into(), "originalFilter".into(), "context".into()],
        sum: vec!["editedDocuments".into(), "deletedDocuments".into()],
        ..Hints::default()
    }
}

/// The client's body with its function wrapped (a body Miroir cannot read goes as it is: the
/// nodes refuse it as one node does). A filter naming the bookkeeping field names its disguise
/// instead, which no node can filter on: the task fails as on one node, where the client never
/// made that field filterable (the error shows the name the client wrote).
fn node_body(parsed: &Value, raw: &Bytes) -> HttpResult<Bytes> {
    let Some(Value::String(function)) = parsed.get("function") else { return Ok(raw.clone()) };
    let mut body = crate::reserved_names::disguised_request(parsed);
    body["function"] = Value::String(wrapped(function));
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| HttpError::Internal(e.to_string()))
}

/// `POST /indexes/{uid}/documents/edit`.
pub async fn edit_by_function(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_write_uid(&uid)?;
    let parsed = json_body(&headers, &body)?;
    let filter = parsed.get("filter").filter(|f| !f.is_null());
    let original = filter.map(Value::to_string);
    let details = json!({
        "context": parsed.get("context").cloned().unwrap_or(Value::Null),
        "deletedDocuments": Value::Null,
        "editedDocuments": Value::Null,
        "function": parsed.get("function").cloned().unwrap_or(Value::Null),
        "originalFilter": original,
    });
    let path = format!("/indexes/{uid}/documents/edit");
    let Some(meta) = state.catalog().get_index(&uid).await? else {
        refuse_if_feature_off(&state, &caller, &path, &body).await?;
        let mut failed = details;
        failed["editedDocuments"] = json!(0);
        failed["deletedDocuments"] = json!(0);
        let error = ApiError::index_not_found(&uid);
        let record = failed_task(&state, Some(&uid), "documentEdition", failed, error).await?;
        return Ok(accepted(&record, None));
    };
    let step = NodeStep::new(Method::POST, path, Some(NodeBody::json(node_body(&parsed, &body)?)));
    let guard = state.index_write_guard(&uid).await?;
    let outcomes =
        fanout::run(&state, caller.node_auth(), fanout::broadcast(&state, vec![step])).await;
    let enqueued = fanout::collect_enqueued(&outcomes)?;
    let shards = fanout::all_shards(meta.shard_count);
    let report = fanout::check_quorum(&state, meta.shard_count, &shards, &enqueued.accepted)?;
    crate::repairs::record_missed(
        &state,
        &uid,
        meta.shard_count,
        &shards,
        &enqueued.accepted,
        false,
    )
    .await?;
    // Like a deletion by filter: the event says that documents of every shard may have changed
    // (or gone), not which.
    let change = write_hooks::change(&state, &uid, Vec::new, &shards, false, None);
    let entry = write_hooks::entry(&state, change.as_ref());
    let (record, position) = enqueue_with_change(
        &state,
        Some(&uid),
        "documentEdition",
        details,
        &edition_hints(),
        enqueued,
        entry,
    )
    .await?;
    let recorded = write_hooks::wrote(&state, &record, change, position);
    drop(guard);
    recorded.await;
    Ok(accepted(&record, Some(&report)))
}

/// For an index Miroir does not know: while the feature is off on the nodes, one node's answer
/// to the request (it refuses it with `feature_not_enabled` before looking for the index).
async fn refuse_if_feature_off(
    state: &AppState,
    caller: &Caller,
    path: &str,
    body: &Bytes,
) -> HttpResult<()> {
    let nodes: Vec<_> = state.topology().nodes().cloned().collect();
    let features = fanout::first_answer(
        state,
        NodeAuth::NodeKey,
        nodes.clone(),
        Method::GET,
        "/experimental-features",
        None,
    )
    .await?;
    if features.is_success() && features.json()[FEATURE].as_bool() == Some(true) {
        return Ok(());
    }
    let answer = fanout::first_answer(
        state,
        caller.node_auth(),
        nodes,
        Method::POST,
        path,
        Some(body.clone()),
    )
    .await?;
    if answer.is_success() {
        return Ok(());
    }
    Err(miroir_types::ForwardedError::new(answer.status, answer.body.to_vec()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_saves_and_restores_the_bookkeeping() {
        let function = wrapped("doc = #{id: doc.id} // done");
        assert_eq!(
            function,
            "let __miroir_saved_shard = doc._miroir_shard; doc = #{id: doc.id} // done\n;if \
             type_of(doc) == \"map\" && type_of(__miroir_saved_shard) != \"()\" { \
             doc._miroir_shard = __miroir_saved_shard; }"
        );
    }

    #[test]
    fn only_a_string_function_is_wrapped() {
        let raw = Bytes::from_static(br#"{"function": 1}"#);
        let parsed: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(node_body(&parsed, &raw).unwrap(), raw);
        let raw = Bytes::from_static(br#"{"function": "doc.a = 1", "filter": "x = 1"}"#);
        let parsed: Value = serde_json::from_slice(&raw).unwrap();
        let sent: Value = serde_json::from_slice(&node_body(&parsed, &raw).unwrap()).unwrap();
        assert_eq!(sent["function"], wrapped("doc.a = 1"));
        assert_eq!(sent["filter"], "x = 1");
        let raw = Bytes::from_static(br#"{"function": "", "filter": "_miroir_shard.s1 EXISTS"}"#);
        let parsed: Value = serde_json::from_slice(&raw).unwrap();
        let sent: Value = serde_json::from_slice(&node_body(&parsed, &raw).unwrap()).unwrap();
        assert_eq!(sent["filter"], "_miroir_shar_.s1 EXISTS");
    }
}
