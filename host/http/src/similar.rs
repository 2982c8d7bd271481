//! `POST` and `GET /indexes/{uid}/similar` over every shard.
//!
//! The reference document (`id`) lives on one shard; a node without it answers `similar` with
//! `not_found_similar_id`. So:
//!
//! 1. the client's request, unchanged, goes to one owner of the reference document's shard (the
//!    *probe*): any error it answers (missing or invalid `id`, unknown embedder, bad filter,
//!    unknown document...) is the client's answer, exactly as one node gives it; at the same
//!    time the reference document's embeddings are read from an owner (`retrieveVectors`);
//! 2. one covering set is asked, each node restricted to the shards it answers for: the node
//!    answering for the reference document's shard gets the `similar` request itself, every
//!    other node a vector search with the reference document's (first) embedding for the
//!    embedder — the same semantic score, so the same `vectorSort` details;
//! 3. the answers are merged like a search ([`miroir_cluster::merge::merge_similar`]).
//!
//! `similar` is part of the vector-search feature: off (`vector_search.enabled: false`), it
//! answers `miroir_feature_not_enabled`; on, the search hooks are asked first (route
//! `similar`): a plugin may decline (this path), rewrite the request, or answer it.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::merge::{merge_similar, node_request, MergeSettings};
use miroir_cluster::{shard_of, NodeAuth, NodeResponse};
use miroir_types::{ForwardedError, NodeId, SearchPlan, SearchRoute, ShardId};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::catalog::check_read_uid;
use crate::documents::{encode_path, strip_document};
use crate::error::HttpResult;
use crate::fanout::first_answer_for;
use crate::read_catalog::index_for_read;
use crate::search::{get_params_as_body, scatter_with};
use crate::search_hooks::{check_similar_feature, HookedAnswer};
use crate::AppState;

/// `similar` fields a vector search does not take.
const SIMILAR_ONLY: [&str; 3] = ["id", "embedder", "showPerformanceDetails"];

/// `POST /indexes/{uid}/similar`.
pub async fn similar_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let request = json_body(&headers, &body)?;
    let probe = (Method::POST, format!("/indexes/{uid}/similar"), Some(body));
    similar(&state, &caller, &uid, &headers, request, probe).await
}

/// `GET /indexes/{uid}/similar`: the query string, as the equivalent POST body once the probe
/// accepted it.
pub async fn similar_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let request = get_params_as_body(query.as_deref());
    let path = match &query {
        Some(q) => format!("/indexes/{uid}/similar?{q}"),
        None => format!("/indexes/{uid}/similar"),
    };
    similar(&state, &caller, &uid, &headers, request, (Method::GET, path, None)).await
}

/// The client's request as it came: method, path with query, body.
type Probe = (Method, String, Option<axum::body::Bytes>);

async fn similar(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    request: Value,
    probe: Probe,
) -> HttpResult<Response> {
    check_similar_feature(state)?;
    let (mut request, mut probe) = (request, probe);
    if state.hooks().hooks().searches() {
        match state.hooks().plan_search(uid, SearchRoute::Similar, &request, None).await? {
            SearchPlan::Decline => {}
            SearchPlan::Answer { body, headers } => {
                return Ok(HookedAnswer::answer(body, headers).respond());
            }
            SearchPlan::Rewrite { request: planned, .. } => {
                if planned != request {
                    // The probe asks the node what the plan asks.
                    let bytes = serde_json::to_vec(&planned).expect("a JSON value serializes");
                    probe = (Method::POST, format!("/indexes/{uid}/similar"), Some(bytes.into()));
                    request = planned;
                }
            }
        }
    }
    let meta = index_for_read(state, uid).await?;
    let assignment = state.assignment(meta.shard_count);
    let id = document_id(&request);
    let (shard, owners) = match &id {
        Some(id) => {
            let shard = shard_of(id, meta.shard_count);
            let owners: Vec<NodeId> =
                assignment.write_targets(shard).flat_map(|(_, o)| o.iter().cloned()).collect();
            (Some(shard), owners)
        }
        // No usable id: any node answers the error one node gives.
        None => (None, state.topology().nodes().cloned().collect()),
    };
    let (method, path, body) = probe;
    let no_more = |_: &NodeResponse| false;
    let probed = first_answer_for(
        state,
        uid,
        caller.node_auth(),
        owners.clone(),
        (method, &path, body),
        no_more,
    );
    let vectors = async {
        let Some(id) = &id else { return Ok(None) };
        let path = format!("/indexes/{uid}/documents/{}?retrieveVectors=true", encode_path(id));
        let request = (Method::GET, path.as_str(), None);
        first_answer_for(state, uid, NodeAuth::NodeKey, owners.clone(), request, no_more)
            .await
            .map(Some)
    };
    let (probed, document) = tokio::join!(probed, vectors);
    let probed = probed?;
    if !probed.is_success() {
        return Err(ForwardedError::new(probed.status, probed.body.to_vec()).into());
    }
    let probed = probed.json();
    let echoed = probed.get("id").cloned().unwrap_or(Value::Null);
    let embedder = request.get("embedder").and_then(Value::as_str).unwrap_or_default();
    let vector = document?.as_ref().and_then(|d| first_embedding(d, embedder));
    let (Some(shard), Some(vector)) = (shard, vector) else {
        // Nothing to compare with: the probe's node answered for the whole index.
        let mut answer = probed;
        if let Some(Value::Array(hits)) = answer.get_mut("hits") {
            hits.iter_mut().for_each(strip_document);
        }
        return Ok(Json(answer).into_response());
    };
    let search = vector_search(&request, embedder, vector);
    let requests = |settings: &MergeSettings, shards: &[ShardId]| {
        let keep = keep_fields(settings);
        if shards.contains(&shard) {
            ("similar".to_owned(), node_request(&request, &keep))
        } else {
            ("search".to_owned(), node_request(&search, &keep))
        }
    };
    let scatter = scatter_with(state, caller, uid, headers, "similar", &requests, None).await?;
    let merged = merge_similar(&request, &echoed, scatter.answers(), &scatter.settings);
    Ok(scatter.respond(merged))
}

/// Fields the merge needs in every hit: the primary key, the distinct attribute.
fn keep_fields(settings: &MergeSettings) -> Vec<&str> {
    let mut keep = vec![settings.primary_key.as_str()];
    keep.extend(settings.distinct_attribute.as_deref());
    keep
}

/// The reference document's id as text (a string, or an integer written out), when usable.
fn document_id(request: &Value) -> Option<String> {
    match request.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// The first embedding `document` (as `retrieveVectors` shows it) holds for `embedder`.
fn first_embedding(document: &NodeResponse, embedder: &str) -> Option<Value> {
    if !document.is_success() {
        return None;
    }
    let mut entry = document.json().get_mut("_vectors")?.get_mut(embedder)?.take();
    if let Some(inner) = entry.get_mut("embeddings") {
        entry = inner.take();
    }
    let Value::Array(items) = entry else { return None };
    if !items.is_empty() && items.iter().all(Value::is_number) {
        return Some(Value::Array(items));
    }
    items.into_iter().find(|e| e.as_array().is_some_and(|xs| !xs.is_empty()))
}

/// The vector search equivalent to the `similar` request for nodes that do not hold the
/// reference document.
fn vector_search(request: &Value, embedder: &str, vector: Value) -> Value {
    let mut search = request.clone();
    if let Value::Object(map) = &mut search {
        map.retain(|k, _| !SIMILAR_ONLY.contains(&k.as_str()));
        map.insert("vector".into(), vector);
        map.insert("hybrid".into(), json!({"embedder": embedder, "semanticRatio": 1.0}));
    }
    search
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: Value) -> NodeResponse {
        NodeResponse { status: 200, body: serde_json::to_vec(&body).expect("json").into() }
    }

    #[test]
    fn ids_are_text_as_the_shard_function_sees_them() {
        assert_eq!(document_id(&json!({"id": 7})).as_deref(), Some("7"));
        assert_eq!(document_id(&json!({"id": "p-1"})).as_deref(), Some("p-1"));
        assert_eq!(document_id(&json!({"id": 1.5})), None);
        assert_eq!(document_id(&json!({})), None);
    }

    #[test]
    fn the_first_embedding_is_read_in_every_shape() {
        let shown = json!({"id": 1, "_vectors": {"e": {"embeddings": [[1.0, 2.0], [3.0, 4.0]],
                                                      "regenerate": false}}});
        assert_eq!(first_embedding(&response(shown), "e"), Some(json!([1.0, 2.0])));
        let flat = json!({"_vectors": {"e": [0.5, 0.25]}});
        assert_eq!(first_embedding(&response(flat), "e"), Some(json!([0.5, 0.25])));
        let none = json!({"_vectors": {"e": {"embeddings": [], "regenerate": false}}});
        assert_eq!(first_embedding(&response(none), "e"), None);
        assert_eq!(first_embedding(&response(json!({"id": 1})), "e"), None);
    }

    #[test]
    fn other_nodes_run_the_same_semantic_search() {
        let request = json!({"id": 7, "embedder": "e", "limit": 3, "filter": "g = 1",
                             "showPerformanceDetails": true});
        assert_eq!(
            vector_search(&request, "e", json!([1.0])),
            json!({"limit": 3, "filter": "g = 1", "vector": [1.0],
                   "hybrid": {"embedder": "e", "semanticRatio": 1.0}})
        );
    }
}
