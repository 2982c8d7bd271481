//! Searches through the hook port: `plan-search` decides who serves a search, `merge-search`
//! replaces the default merge for the searches its plugin took, and per-shard answers (for
//! `merge-search` and the plugins' `scatter` import).
//!
//! Only searches of a gateway whose hook port offers `plan-search` or `merge-search` come here
//! (`search::scatter_gather` checks one flag); every other search takes the plain path.
//!
//! - The hooks are asked in load order ([`HookPort::plan_search`]); the first that does not
//!   decline takes the search. When every hook declines, the search takes the plain path, as if
//!   there were no hook (and no `merge-search` is called for it).
//! - `rewrite`: the planned request is what every shard is sent (with Miroir's own additions:
//!   offset 0, ranking scores, the shard restriction). The default merge still answers the
//!   client's own request (its `q`, `offset`, `limit`), so a plan may over-fetch or filter without
//!   changing the shape of the answer. A rewrite to the client's own request, merged by default,
//!   is the plain path.
//! - `merge-search` (of the plugin that took the search) receives the client's own request and
//!   each shard's own answer (a shard's hits, totals and facets, not a node's): each node of the
//!   covering set is sent one Meilisearch multi-search with one query per shard it answers for,
//!   each restricted to that shard. Shards no replica could answer are included with the last
//!   status and error body (status `0`, node `""` when no node was asked). Its answer is what the
//!   client receives.
//! - `answer`: the hook answered the search itself (with its `search` or `scatter` imports, whose
//!   searches skip its own hooks); its body and headers are the client's answer.
//! - A hook that fails (trap, deadline, memory) fails this search with `miroir_plugin_failed`
//!   (502); a hook that refuses answers the plugin's own status and code. Other requests and
//!   other plugins are not affected.
//!
//! Vector and hybrid searches (and `similar`) need `vector_search.enabled`
//! ([`check_vector_feature`]); the vector-search plugin serves them through these hooks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use miroir_cluster::merge::merge_search;
use miroir_cluster::{NodeBody, NodeError, NodeRequest, NodeResponse};
use miroir_types::{ApiError, ErrorCode, NodeId, SearchPlan, SearchRoute, ShardAnswer, ShardId};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::HttpResult;
use crate::search::{restricted, scatter_shaped, scatter_with, search_requests};
use crate::AppState;

/// A search a hook served: the client's answer.
pub(crate) struct HookedAnswer {
    pub(crate) body: Value,
    /// Headers the hook added.
    headers: Vec<(String, String)>,
    /// The shards no replica answered (`X-Miroir-Degraded`).
    missing: BTreeSet<ShardId>,
}

impl HookedAnswer {
    pub(crate) fn answer(body: Value, headers: Vec<(String, String)>) -> Self {
        HookedAnswer { body, headers, missing: BTreeSet::new() }
    }

    pub(crate) fn respond(self) -> Response {
        let mut response = respond(self.body, &self.missing);
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// `vector` or `hybrid` in a search, while `vector_search.enabled` is off: the error naming the
/// setting. Nothing of the vector-search plugin is loaded then.
pub(crate) fn check_vector_feature(state: &AppState, request: &Value) -> HttpResult<()> {
    let uses_vectors =
        ["vector", "hybrid"].iter().any(|k| request.get(k).is_some_and(|v| !v.is_null()));
    if uses_vectors && !state.config().vector_search.enabled {
        return Err(vector_feature_disabled("Vector and hybrid searches (`vector`, `hybrid`)"));
    }
    Ok(())
}

/// `similar` while `vector_search.enabled` is off.
pub(crate) fn check_similar_feature(state: &AppState) -> HttpResult<()> {
    if !state.config().vector_search.enabled {
        return Err(vector_feature_disabled("Similar documents (`/similar`)"));
    }
    Ok(())
}

fn vector_feature_disabled(what: &str) -> crate::error::HttpError {
    ApiError::new(
        ErrorCode::MiroirFeatureNotEnabled,
        format!(
            "{what} are served by Miroir's vector-search feature, which is off: set \
             `vector_search.enabled: true` in Miroir's configuration."
        ),
    )
    .into()
}

/// A search through the hooks (see the module documentation); `None` when the plain path serves
/// it. `from_plugin` names the plugin running this search through its `search` import: its own
/// hooks are skipped.
pub(crate) async fn hooked_search(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    request: &Value,
    from_plugin: Option<&str>,
) -> HttpResult<Option<HookedAnswer>> {
    let port = state.hooks();
    let (planned, merged_by) =
        match port.plan_search(uid, SearchRoute::Search, request, from_plugin).await? {
            SearchPlan::Decline => return Ok(None),
            SearchPlan::Answer { body, headers } => {
                return Ok(Some(HookedAnswer::answer(body, headers)));
            }
            SearchPlan::Rewrite { request: planned, merged_by } => (planned, merged_by),
        };
    if let Some(plugin) = merged_by {
        let (answers, missing) = shard_answers(state, caller, uid, headers, &planned).await?;
        if let Some(merged) = port.merge_search(&plugin, uid, request, answers).await {
            return Ok(Some(HookedAnswer { body: merged?, headers: Vec::new(), missing }));
        }
    }
    if planned == *request {
        return Ok(None);
    }
    let requests = search_requests(&planned, "search");
    let scatter = scatter_with(state, caller, uid, headers, "search", &requests, None).await?;
    let merged = merge_search(request, scatter.answers(), &scatter.settings);
    Ok(Some(HookedAnswer { body: merged, headers: Vec::new(), missing: scatter.missing }))
}

fn respond(merged: Value, missing: &BTreeSet<ShardId>) -> Response {
    let mut response = Json(merged).into_response();
    if !missing.is_empty() {
        let list = missing.iter().map(|s| s.get().to_string()).collect::<Vec<_>>().join(",");
        if let Ok(value) = HeaderValue::from_str(&format!("shards={list}")) {
            response.headers_mut().insert("x-miroir-degraded", value);
        }
    }
    response
}

/// One request of a per-shard scatter: the node, the shards it was asked for, and (once it
/// answered or failed) how long it took and what it said.
struct Ask {
    node: NodeId,
    shards: Vec<ShardId>,
    outcome: Option<(Duration, u16, Bytes)>,
}

/// The bookkeeping of a per-shard scatter: what each node was asked and answered.
#[derive(Default)]
pub(crate) struct PerShard {
    asks: Mutex<Vec<Ask>>,
}

impl PerShard {
    fn asks(&self) -> std::sync::MutexGuard<'_, Vec<Ask>> {
        self.asks.lock().expect("per-shard bookkeeping lock poisoned")
    }

    /// The multi-search sent to `node` for `shards`: one query per shard, `base` restricted to it.
    pub(crate) fn node_request(
        &self,
        uid: &str,
        node: &NodeId,
        base: &Value,
        shards: &[ShardId],
    ) -> NodeRequest {
        self.asks().push(Ask { node: node.clone(), shards: shards.to_vec(), outcome: None });
        let queries: Vec<Value> = shards
            .iter()
            .map(|shard| {
                let mut query = restricted(base, std::slice::from_ref(shard));
                query["indexUid"] = json!(uid);
                query
            })
            .collect();
        let bytes = serde_json::to_vec(&json!({ "queries": queries })).expect("JSON serializes");
        NodeRequest {
            method: Method::POST,
            path: "/multi-search".to_owned(),
            body: Some(NodeBody::json(bytes)),
        }
    }

    /// Records the outcome of the latest request to `node`.
    pub(crate) fn record(
        &self,
        node: &NodeId,
        took: Duration,
        outcome: &Result<NodeResponse, NodeError>,
    ) {
        let (status, body) = match outcome {
            Ok(response) => (response.status, response.body.clone()),
            Err(error) => (0, Bytes::from(unreachable_body(&error.to_string()))),
        };
        let mut asks = self.asks();
        if let Some(ask) = asks.iter_mut().rev().find(|a| &a.node == node && a.outcome.is_none()) {
            ask.outcome = Some((took, status, body));
        }
    }

    /// One answer per shard of `shards`, in shard order: the shard's own answer when a node gave
    /// one, else the last failure of a node asked for it.
    fn answers(&self, shards: u32) -> Vec<ShardAnswer> {
        let mut by_shard: BTreeMap<u32, ShardAnswer> = BTreeMap::new();
        for ask in self.asks().iter() {
            let Some((took, status, body)) = &ask.outcome else { continue };
            let success = (200..300).contains(status);
            let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            for (i, shard) in ask.shards.iter().enumerate() {
                let answered = by_shard.get(&shard.get()).is_some_and(|a| a.status / 100 == 2);
                if answered {
                    continue;
                }
                let body = if success {
                    let mut result = parsed["results"][i].clone();
                    if let Some(object) = result.as_object_mut() {
                        object.remove("indexUid");
                        object.remove("queryUid");
                    }
                    strip_hits(&mut result);
                    result
                } else {
                    parsed.clone()
                };
                by_shard.insert(
                    shard.get(),
                    ShardAnswer {
                        shard: shard.get(),
                        node: ask.node.to_string(),
                        status: *status,
                        body,
                        took: *took,
                    },
                );
            }
        }
        (0..shards)
            .map(|shard| {
                by_shard.remove(&shard).unwrap_or_else(|| ShardAnswer {
                    shard,
                    node: String::new(),
                    status: 0,
                    body: unreachable_value("no replica of the shard could be asked"),
                    took: Duration::ZERO,
                })
            })
            .collect()
    }
}

fn unreachable_value(reason: &str) -> Value {
    let code = ErrorCode::MiroirShardUnavailable;
    json!({
        "message": reason,
        "code": code.name(),
        "type": "system",
        "link": code.link(),
    })
}

fn unreachable_body(reason: &str) -> Vec<u8> {
    unreachable_value(reason).to_string().into_bytes()
}

/// A node's multi-search error as its search error: without the ``Inside `.queries[i]`: ``
/// prefix naming the per-shard query.
pub(crate) fn unwrap_query_error(body: &[u8]) -> Vec<u8> {
    let Ok(mut error) = serde_json::from_slice::<Value>(body) else { return body.to_vec() };
    let message = error["message"].as_str().unwrap_or_default();
    let unwrapped = message
        .strip_prefix("Inside `.queries[")
        .and_then(|rest| rest.split_once("]`: "))
        .map(|(_, rest)| rest.to_owned());
    match unwrapped {
        Some(message) => {
            error["message"] = json!(message);
            error.to_string().into_bytes()
        }
        None => body.to_vec(),
    }
}

/// Takes Miroir's bookkeeping fields out of every hit of a shard answer.
fn strip_hits(answer: &mut Value) {
    if let Some(hits) = answer.get_mut("hits").and_then(Value::as_array_mut) {
        for hit in hits {
            crate::documents::strip_document(hit);
        }
    }
}

/// Each shard's own answer to `request` (sent as Miroir sends a search: offset 0, ranking scores,
/// restricted to the shard), in shard order, failed shards included; and the shards no replica
/// answered.
pub(crate) async fn shard_answers(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    request: &Value,
) -> HttpResult<(Vec<ShardAnswer>, BTreeSet<ShardId>)> {
    let per_shard = PerShard::default();
    let requests = search_requests(request, "search");
    let scatter =
        scatter_shaped(state, caller, uid, headers, "search", &requests, None, Some(&per_shard))
            .await?;
    let shards = scatter.shards.iter().flatten().count() + scatter.missing.len();
    let shards = u32::try_from(shards).unwrap_or(u32::MAX);
    Ok((per_shard.answers(shards), scatter.missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_shard_query_error_reads_as_the_search_error() {
        let body = br#"{"message":"Inside `.queries[3]`: Attribute `x` is not filterable.","code":"invalid_search_filter","type":"invalid_request","link":"l"}"#;
        let error: Value = serde_json::from_slice(&unwrap_query_error(body)).expect("json");
        assert_eq!(error["message"], "Attribute `x` is not filterable.");
        assert_eq!(error["code"], "invalid_search_filter");
        assert_eq!(unwrap_query_error(b"not json"), b"not json");
    }

    #[test]
    fn per_shard_answers_come_in_shard_order_with_failures() {
        let per_shard = PerShard::default();
        let (n1, n2) = (NodeId::new("n1").expect("id"), NodeId::new("n2").expect("id"));
        let base = json!({"q": "x"});
        let request =
            per_shard.node_request("items", &n1, &base, &[ShardId::new(0), ShardId::new(2)]);
        assert_eq!(request.path, "/multi-search");
        per_shard.node_request("items", &n2, &base, &[ShardId::new(1)]);
        let answered = NodeResponse {
            status: 200,
            body: Bytes::from(
                json!({"results": [
                    {"indexUid": "items", "hits": [{"id": 1, "_miroir_shard": {"s0": true}}], "estimatedTotalHits": 1},
                    {"indexUid": "items", "hits": [], "estimatedTotalHits": 0}
                ]})
                .to_string(),
            ),
        };
        per_shard.record(&n1, Duration::from_millis(3), &Ok(answered));
        per_shard.record(
            &n2,
            Duration::from_millis(1),
            &Err(NodeError::Timeout { node: n2.clone(), timeout: Duration::from_secs(1) }),
        );
        let answers = per_shard.answers(4);
        assert_eq!(answers.iter().map(|a| a.shard).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!((answers[0].node.as_str(), answers[0].status), ("n1", 200));
        assert_eq!(answers[0].body["hits"], json!([{"id": 1}]), "bookkeeping removed");
        assert!(answers[0].body.get("indexUid").is_none());
        assert_eq!(answers[0].took, Duration::from_millis(3));
        assert_eq!(answers[2].body["estimatedTotalHits"], 0);
        assert_eq!((answers[1].node.as_str(), answers[1].status), ("n2", 0));
        assert!(answers[1].body["message"].is_string());
        assert_eq!((answers[3].node.as_str(), answers[3].status), ("", 0), "never asked");
    }
}
