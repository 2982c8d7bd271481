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

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use axum::http::Method;
use miroir_cluster::merge::{merge_facets, DEFAULT_SEARCH_LIMIT, RESERVED_PREFIX};
use miroir_cluster::{NodeAuth, NodeBody, NodeError, ReadOutcome, ReadPlan};
use miroir_config::UnavailableShardPolicy;
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId, ShardId};
use serde_json::{json, Map, Value};

use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::search::restricted;
use crate::AppState;

/// Round-robin over replica groups for federated searches, per instance.
static NEXT_GROUP: AtomicUsize = AtomicUsize::new(0);

/// Meilisearch's default federated `limit`.
const DEFAULT_LIMIT: u64 = DEFAULT_SEARCH_LIMIT as u64;

/// One hit of a node's answer, before the merge.
struct Candidate {
    score: f64,
    position: u64,
    key: Value,
    hit: Map<String, Value>,
}

/// Runs the federated multi-search `request` (`{federation: {limit, offset}, queries}`, each
/// query with its `indexUid` and optional `federationOptions`, already validated by the caller)
/// and answers as one node holding every document would.
pub async fn federated_search(state: &AppState, request: &Value) -> HttpResult<Value> {
    let queries = request["queries"].as_array().ok_or_else(|| {
        HttpError::api(ErrorCode::BadRequest, "Missing field `queries`: expected an array")
    })?;
    let page = FederatedPage::of(&request["federation"]);
    let (offset, limit) = (page.offset, page.limit);
    let facets_by_index = request["federation"]["facetsByIndex"].as_object().cloned();

    let rotation = NEXT_GROUP.fetch_add(1, AtomicOrdering::Relaxed);
    // Per query: its index's assignment and read plan (health-aware group and covering set).
    let mut plans = Vec::with_capacity(queries.len());
    let mut primary_keys: HashMap<String, String> = HashMap::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut round: BTreeMap<NodeId, Vec<(u64, Vec<ShardId>)>> = BTreeMap::new();
    let mut missing = 0usize;
    let no_failures = BTreeSet::new();
    for (position, query) in queries.iter().enumerate() {
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
        let uncovered: BTreeSet<ShardId> = plan.covering.missing.iter().copied().collect();
        let (extra, left) = plan.replacements(&assignment, &view, &uncovered, &no_failures);
        missing += left.len();
        for (node, shards) in plan.covering.nodes.iter().chain(&extra) {
            round.entry(node.clone()).or_default().push((position as u64, shards.clone()));
        }
        plans.push((assignment, plan));
    }

    let mut candidates = Vec::new();
    // Per index of `facetsByIndex`: each node's facets of its shards, as a search answer's.
    let mut facet_answers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut total = 0u64;
    let mut slowest = 0u64;
    let mut failed_nodes = BTreeSet::new();
    while !round.is_empty() {
        let facets_by_index = &facets_by_index;
        let calls = round.into_iter().map(|(node, local)| async move {
            let positions: Vec<u64> = local.iter().map(|(p, _)| *p).collect();
            let bodies: Vec<Value> =
                local.iter().map(|(p, shards)| restricted(&queries[*p as usize], shards)).collect();
            let mut federation = page.node_federation();
            if let Some(facets) = facets_by_index {
                // The facets of the indexes this node is asked about (the merge is Miroir's).
                let asked: BTreeSet<&str> =
                    bodies.iter().filter_map(|b| b["indexUid"].as_str()).collect();
                let own: Map<String, Value> = facets
                    .iter()
                    .filter(|(uid, _)| asked.contains(uid.as_str()))
                    .map(|(uid, names)| (uid.clone(), names.clone()))
                    .collect();
                federation["facetsByIndex"] = Value::Object(own);
            }
            let body = json!({ "federation": federation, "queries": bodies });
            let answer = match (state.client(&node), serde_json::to_vec(&body)) {
                (Ok(client), Ok(bytes)) => {
                    client
                        .send(
                            Method::POST,
                            "/multi-search",
                            Some(NodeBody::json(bytes)),
                            NodeAuth::NodeKey,
                        )
                        .await
                }
                (Err(error), _) => Err(error),
                (_, Err(error)) => Err(NodeError::Unreachable {
                    node: node.clone(),
                    reason: format!("request not serializable: {error}"),
                }),
            };
            (node, local, positions, answer)
        });
        let mut next: BTreeMap<NodeId, Vec<(u64, Vec<ShardId>)>> = BTreeMap::new();
        for (node, local, positions, answer) in futures_util::future::join_all(calls).await {
            let verdict = ReadOutcome::of(&answer);
            match (verdict, answer) {
                (ReadOutcome::Answered, Ok(response)) => {
                    let body = response.json();
                    total += body["estimatedTotalHits"]
                        .as_u64()
                        .or_else(|| body["totalHits"].as_u64())
                        .unwrap_or(0);
                    slowest = slowest.max(body["processingTimeMs"].as_u64().unwrap_or(0));
                    for (uid, facets) in body["facetsByIndex"].as_object().into_iter().flatten() {
                        facet_answers.entry(uid.clone()).or_default().push(json!({
                            "facetDistribution": facets["distribution"],
                            "facetStats": facets["stats"],
                        }));
                    }
                    let hits = body["hits"].as_array().cloned().unwrap_or_default();
                    candidates.extend(
                        hits.into_iter()
                            .filter_map(|hit| candidate(hit, &positions, queries, &primary_keys)),
                    );
                }
                (ReadOutcome::Refused, Ok(response)) => {
                    return Err(relocated(response.status, &response.json(), &positions));
                }
                (verdict, answer) => {
                    if verdict == ReadOutcome::Stale {
                        // Which query's index the node lacks is in the message; every index of
                        // this node's part is suspect, and each is asked elsewhere.
                        let body = answer.as_ref().map(|r| r.json()).unwrap_or_default();
                        let message = body["message"].as_str().unwrap_or_default();
                        for (position, _) in &local {
                            let uid = queries[*position as usize]["indexUid"].as_str();
                            if let Some(uid) = uid.filter(|u| message.contains(&format!("`{u}`"))) {
                                state.stale().mark(&node, uid);
                            }
                        }
                    }
                    tracing::warn!(node = %node, ?verdict, "a node failed a federated search; asking a replica");
                    state.read_stats().node_failed(&node);
                    failed_nodes.insert(node);
                    for (position, shards) in local {
                        let (assignment, plan) = &plans[position as usize];
                        let shards: BTreeSet<ShardId> = shards.into_iter().collect();
                        let uid =
                            queries[position as usize]["indexUid"].as_str().unwrap_or_default();
                        let view = state.read_view(uid);
                        let (picks, left) =
                            plan.replacements(assignment, &view, &shards, &failed_nodes);
                        missing += left.len();
                        for (node, shards) in picks {
                            next.entry(node).or_default().push((position, shards));
                        }
                    }
                }
            }
        }
        round = next;
    }
    if missing > 0
        && state.config().scatter.unavailable_shard_policy == UnavailableShardPolicy::Error
    {
        return Err(HttpError::api(
            ErrorCode::MiroirShardUnavailable,
            "Some shards of the federated search have no replica answering.",
        ));
    }
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.position.cmp(&b.position))
            .then_with(|| compare_keys(&a.key, &b.key))
    });
    let hits: Vec<Value> = candidates
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|c| Value::Object(c.hit))
        .collect();
    let mut answer = page.answer(hits, slowest, total);
    if let Some(facets) = &facets_by_index {
        let mut by_index = Map::new();
        for uid in facets.keys() {
            let answers = facet_answers.remove(uid).unwrap_or_default();
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

/// `mergeFacets`: every index's facets as one, counts summed by value (in value order, cut to
/// `most` values per facet) and stats as the min of mins and max of maxes.
fn merge_indexes(by_index: &Map<String, Value>, most: usize) -> (Value, Value) {
    let answers: Vec<Value> = by_index
        .values()
        .map(|f| json!({ "facetDistribution": f["distribution"], "facetStats": f["stats"] }))
        .collect();
    let settings = miroir_cluster::merge::MergeSettings {
        max_total_hits: 0,
        max_values_per_facet: most,
        sort_facet_values_by: vec![("*".to_owned(), "alpha".to_owned())],
        primary_key: String::new(),
        distinct_attribute: None,
    };
    merge_facets(&answers, &settings)
}

/// The federated page the client asked for: `limit`/`offset`, or `page`/`hitsPerPage` (then the
/// answer has `totalHits` and `totalPages`, as one node's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FederatedPage {
    offset: u64,
    limit: u64,
    /// `Some((page, hitsPerPage))` when the client paged.
    paged: Option<(u64, u64)>,
}

impl FederatedPage {
    fn of(federation: &Value) -> Self {
        let number = |key: &str| federation[key].as_u64();
        if number("page").is_some() || number("hitsPerPage").is_some() {
            let per_page = number("hitsPerPage").unwrap_or(DEFAULT_LIMIT);
            let page = number("page").unwrap_or(1);
            let offset = page.saturating_sub(1).saturating_mul(per_page);
            let limit = if page == 0 { 0 } else { per_page };
            FederatedPage { offset, limit, paged: Some((page, per_page)) }
        } else {
            let limit = number("limit").unwrap_or(DEFAULT_LIMIT);
            FederatedPage { offset: number("offset").unwrap_or(0), limit, paged: None }
        }
    }

    /// What each node is asked: the first `offset + limit` hits, paged when the client paged
    /// (so the nodes count every hit: `totalHits`).
    fn node_federation(&self) -> Value {
        let depth = self.offset.saturating_add(self.limit);
        match self.paged {
            Some(_) => json!({ "page": 1, "hitsPerPage": depth }),
            None => json!({ "offset": 0, "limit": depth }),
        }
    }

    fn answer(&self, hits: Vec<Value>, slowest: u64, total: u64) -> Value {
        match self.paged {
            Some((page, per_page)) => json!({
                "hits": hits,
                "processingTimeMs": slowest,
                "hitsPerPage": per_page,
                "page": page,
                "totalPages": if per_page == 0 { 0 } else { total.div_ceil(per_page) },
                "totalHits": total,
            }),
            None => json!({
                "hits": hits,
                "processingTimeMs": slowest,
                "limit": self.limit,
                "offset": self.offset,
                "estimatedTotalHits": total,
            }),
        }
    }
}

/// A node's hit with its query position made the batch's, and Miroir's fields removed.
fn candidate(
    hit: Value,
    positions: &[u64],
    queries: &[Value],
    primary_keys: &HashMap<String, String>,
) -> Option<Candidate> {
    let Value::Object(mut hit) = hit else { return None };
    let federation = hit.get_mut("_federation")?.as_object_mut()?;
    let local = usize::try_from(federation.get("queriesPosition")?.as_u64()?).ok()?;
    let position = *positions.get(local)?;
    federation.insert("queriesPosition".into(), json!(position));
    let score = federation.get("weightedRankingScore").and_then(Value::as_f64).unwrap_or(0.0);
    let index = queries.get(usize::try_from(position).ok()?)?["indexUid"].as_str()?;
    let key = primary_keys.get(index).and_then(|pk| hit.get(pk)).cloned().unwrap_or(Value::Null);
    strip_reserved(&mut hit);
    Some(Candidate { score, position, key, hit })
}

/// Removes `_miroir_*` fields from a hit, its `_formatted` and its `_matchesPosition`.
fn strip_reserved(hit: &mut Map<String, Value>) {
    hit.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
    for nested in ["_formatted", "_matchesPosition"] {
        if let Some(Value::Object(inner)) = hit.get_mut(nested) {
            inner.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
        }
    }
}

/// Primary keys in ascending order: numbers by value, strings by text, numbers first.
fn compare_keys(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
        }
        (Value::Number(_), _) => Ordering::Less,
        (_, Value::Number(_)) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
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
    fn node_positions_become_the_batch_positions() {
        let queries = vec![json!({"indexUid": "a"}), json!({"indexUid": "b"})];
        let keys: HashMap<String, String> =
            [("a".to_owned(), "id".to_owned()), ("b".to_owned(), "sku".to_owned())].into();
        let hit = json!({"sku": "x1", "_miroir_shard": {"s3": null},
                         "_formatted": {"_miroir_shard": {}, "sku": "x1"},
                         "_federation": {"indexUid": "b", "queriesPosition": 0,
                                         "weightedRankingScore": 0.5}});
        let c = candidate(hit, &[1], &queries, &keys).expect("a candidate");
        assert_eq!(c.position, 1);
        assert_eq!(c.key, json!("x1"));
        assert_eq!(c.hit["_federation"]["queriesPosition"], json!(1));
        assert!(!c.hit.contains_key("_miroir_shard"));
        assert_eq!(c.hit["_formatted"], json!({"sku": "x1"}));
    }

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

    #[test]
    fn federated_pages_ask_nodes_for_every_hit_before_the_page() {
        let paged = FederatedPage::of(&json!({"page": 3, "hitsPerPage": 4}));
        assert_eq!((paged.offset, paged.limit), (8, 4));
        assert_eq!(paged.node_federation(), json!({"page": 1, "hitsPerPage": 12}));
        let answer = paged.answer(Vec::new(), 1, 9);
        assert_eq!((answer["totalPages"].as_u64(), answer["page"].as_u64()), (Some(3), Some(3)));
        let zero = FederatedPage::of(&json!({"page": 0}));
        assert_eq!((zero.limit, zero.paged), (0, Some((0, 20))));
        let plain = FederatedPage::of(&json!({"offset": 2}));
        assert_eq!(plain.node_federation(), json!({"offset": 0, "limit": 22}));
    }

    #[test]
    fn keys_order_numbers_by_value() {
        assert_eq!(compare_keys(&json!(9), &json!(10)), Ordering::Less);
        assert_eq!(compare_keys(&json!("b"), &json!("a")), Ordering::Greater);
        assert_eq!(compare_keys(&json!(1), &json!("a")), Ordering::Less);
    }
}
