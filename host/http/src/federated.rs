//! Federated multi-search over shards: the plugins' `federated-search` import.
//!
//! Meilisearch counts a document matched by several queries of a federated search once, in its
//! `estimatedTotalHits` and in its hits. Per-query totals cannot tell which documents several
//! queries share, but shards can: the documents of an index are disjoint across its shards. So
//! every node of one covering set per index (all in one replica group) is asked one federated
//! request holding every query of the batch, each restricted to the shards that node answers for
//! (`_miroir_shard.s<N> EXISTS`, as a plain search is). Each node deduplicates its own documents,
//! no document is seen by two nodes, and the nodes' totals add up to the exact total. The hits
//! are merged by weighted ranking score, then query position, then primary key.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

use axum::http::Method;
use miroir_cluster::merge::{merge_facets, merge_indexes, FederatedMerge, FederatedPage};
use miroir_cluster::{
    scatter_parts, Assignment, Coverage, NodeAuth, NodeBody, NodeRequest, ReadPart, ReadPlan,
};
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId, ShardId};
use serde_json::{json, Map, Value};

use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::search::{restricted, ClientTransport};
use crate::AppState;

/// Round-robin over replica groups for federated searches, per instance.
static NEXT_GROUP: AtomicUsize = AtomicUsize::new(0);

/// Runs the federated multi-search `request` (`{federation: {limit, offset}, queries}`, each
/// query with its `indexUid` and optional `federationOptions`, already validated by the caller)
/// and answers as one node holding every document would.
///
/// Each query is one part of a multi-part scatter ([`scatter_parts`]): its index's plan, all
/// parts starting in the same replica group; each node is sent one federated request holding
/// the queries it answers for, each restricted to its shards. Failover, stale marks and missing
/// shards are the engine's; the merge is [`FederatedMerge`].
pub async fn federated_search(state: &AppState, request: &Value) -> HttpResult<Value> {
    let queries = request["queries"].as_array().ok_or_else(|| {
        HttpError::api(ErrorCode::BadRequest, "Missing field `queries`: expected an array")
    })?;
    let page = FederatedPage::of(&request["federation"]);
    let facets_by_index = request["federation"]["facetsByIndex"].as_object().cloned();

    let rotation = NEXT_GROUP.fetch_add(1, AtomicOrdering::Relaxed);
    // Per query: its index's assignment and read plan (health-aware group and covering set).
    let mut plans: Vec<(Arc<Assignment>, ReadPlan)> = Vec::with_capacity(queries.len());
    let mut uids: Vec<&str> = Vec::with_capacity(queries.len());
    let mut primary_keys: HashMap<String, String> = HashMap::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (position, query) in queries.iter().enumerate() {
        if let Err(HttpError::Api(error)) = crate::search_hooks::check_vector_feature(state, query)
        {
            return Err(inside(position, &error));
        }
        let uid = query["indexUid"].as_str().unwrap_or_default();
        let meta = match index_for_read(state, uid).await {
            Ok(meta) => meta,
            Err(HttpError::Api(error)) => return Err(inside(position, &error)),
            Err(error) => return Err(error),
        };
        let primary_key = meta.primary_key.clone().unwrap_or_else(|| "id".to_owned());
        primary_keys.insert(uid.to_owned(), primary_key);
        versions.insert(uid.to_owned(), meta.settings_version);
        let assignment = state.assignment(meta.shard_count);
        let view = state.read_view(uid);
        let plan = ReadPlan::new(&state.topology(), &assignment, &view, rotation, None);
        plans.push((assignment, plan));
        uids.push(uid);
    }
    let parts: Vec<ReadPart<'_>> = plans
        .iter()
        .zip(&uids)
        .map(|((assignment, plan), uid)| ReadPart { plan, assignment, view: state.read_view(uid) })
        .collect();

    let node_request = |_: &NodeId, share: &[(usize, Vec<ShardId>)]| {
        let bodies: Vec<Value> =
            share.iter().map(|(p, shards)| restricted(&queries[*p], shards)).collect();
        let mut federation = page.node_federation();
        if let Some(facets) = &facets_by_index {
            // The facets of the indexes this node is asked about (the merge is Miroir's).
            let asked: Vec<&str> = share.iter().map(|(p, _)| uids[*p]).collect();
            let own: Map<String, Value> = facets
                .iter()
                .filter(|(uid, _)| asked.contains(&uid.as_str()))
                .map(|(uid, names)| (uid.clone(), names.clone()))
                .collect();
            federation["facetsByIndex"] = Value::Object(own);
        }
        let body = json!({ "federation": federation, "queries": bodies });
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        NodeRequest {
            method: Method::POST,
            path: "/multi-search".to_owned(),
            body: Some(NodeBody::json(bytes)),
        }
    };
    let transport = ClientTransport::new(state, NodeAuth::NodeKey);
    let gathered = scatter_parts(&transport, &parts, &node_request).await.map_err(|refused| {
        relocated(refused.response.status, &refused.response.json(), &positions(&refused.share))
    })?;
    for failure in &gathered.failures {
        let (node, verdict) = (&failure.node, failure.outcome);
        let error = failure.error.as_ref().map(ToString::to_string);
        tracing::warn!(%node, ?verdict, status = ?failure.status, ?error,
            "a node failed a federated search; asking a replica");
        state.read_stats().node_failed(node);
    }
    let missing: BTreeSet<ShardId> = gathered.missing.iter().flatten().copied().collect();
    if let Coverage::Unavailable(_) = crate::search::coverage(state, &missing) {
        return Err(HttpError::api(
            ErrorCode::MiroirShardUnavailable,
            "Some shards of the federated search have no replica answering.",
        ));
    }
    let mut merge = FederatedMerge::default();
    for (_, share, response) in &gathered.answers {
        merge.add(&response.json(), &positions(share), queries, &primary_keys);
    }
    let mut answer = merge.page(&page);
    if let Some(facets) = &facets_by_index {
        let mut by_index = Map::new();
        for uid in facets.keys() {
            let answers = merge.take_facets(uid);
            let version = versions.get(uid).copied().unwrap_or(0);
            let primary_key = primary_keys.get(uid).cloned().unwrap_or_else(|| "id".to_owned());
            let settings = crate::search::merge_settings(state, uid, version, &primary_key).await?;
            let (distribution, stats) = merge_facets(&answers, &settings);
            by_index.insert(uid.clone(), json!({ "distribution": distribution, "stats": stats }));
        }
        match request["federation"].get("mergeFacets").filter(|m| !m.is_null()) {
            Some(merge) => {
                let most = merge["maxValuesPerFacet"].as_u64().map_or(usize::MAX, |n| n as usize);
                let (distribution, stats) = merge_indexes(&by_index, most);
                answer["facetDistribution"] = distribution;
                answer["facetStats"] = stats;
            }
            None => answer["facetsByIndex"] = Value::Object(by_index),
        }
    }
    Ok(answer)
}

/// The batch positions of a node's queries, in the order it was sent them.
fn positions(share: &[(usize, Vec<ShardId>)]) -> Vec<u64> {
    share.iter().map(|(p, _)| *p as u64).collect()
}

/// `error` located at query `position` of the batch, as Meilisearch answers it: status 400
/// (authentication statuses kept), message prefixed with ``Inside `.queries[i]`: ``.
fn inside(position: usize, error: &ApiError) -> HttpError {
    let status = if matches!(error.status(), 401 | 403) { error.status() } else { 400 };
    let located =
        ApiError::new(error.code(), format!("Inside `.queries[{position}]`: {}", error.message()));
    ForwardedError::new(status, located.to_body()).into()
}

/// A node's error to its part of the batch, with the query position in its message made the
/// batch's.
fn relocated(status: u16, body: &Value, positions: &[u64]) -> HttpError {
    let mut body = body.clone();
    if let Some(message) = body["message"].as_str() {
        let local = message
            .strip_prefix("Inside `.queries[")
            .and_then(|rest| rest.split_once("]`"))
            .and_then(|(n, rest)| Some((n.parse::<usize>().ok()?, rest)));
        if let Some((local, rest)) = local {
            if let Some(position) = positions.get(local) {
                body["message"] = json!(format!("Inside `.queries[{position}]`{rest}"));
            }
        }
    }
    ForwardedError::new(status, serde_json::to_vec(&body).unwrap_or_default()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_name_the_batch_position() {
        let body = json!({"message": "Inside `.queries[1]`: Attribute `x` is not filterable.",
                          "code": "invalid_search_filter"});
        let HttpError::Forwarded(error) = relocated(400, &body, &[0, 4]) else {
            panic!("a forwarded error")
        };
        let (status, bytes) = error.into_parts();
        let answer: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(status, 400);
        assert_eq!(answer["message"], "Inside `.queries[4]`: Attribute `x` is not filterable.");
    }
}
