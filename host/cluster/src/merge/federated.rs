//! Merging the answers of a federated multi-search.
//!
//! Every node is asked one federated request holding its part of the batch (the queries of the
//! indexes it answers for, each restricted to its shards; see `scatter_parts`), so no document
//! is seen by two nodes and the nodes' totals add up. The hits are merged by weighted ranking
//! score, then query position, then primary key; `facetsByIndex` answers are kept per index
//! for [`crate::merge::merge_facets`], and `mergeFacets` sums them over indexes
//! ([`merge_indexes`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::{merge_facets, MergeSettings, DEFAULT_SEARCH_LIMIT, RESERVED_PREFIX};

/// Meilisearch's default federated `limit`.
const DEFAULT_LIMIT: u64 = DEFAULT_SEARCH_LIMIT as u64;

/// The federated page the client asked for: `limit`/`offset`, or `page`/`hitsPerPage` (then the
/// answer has `totalHits` and `totalPages`, as one node's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FederatedPage {
    /// The first hit served.
    pub offset: u64,
    /// How many hits are served.
    pub limit: u64,
    /// `Some((page, hitsPerPage))` when the client paged.
    pub paged: Option<(u64, u64)>,
}

impl FederatedPage {
    /// The page of the client's `federation` object.
    pub fn of(federation: &Value) -> Self {
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
    pub fn node_federation(&self) -> Value {
        let depth = self.offset.saturating_add(self.limit);
        match self.paged {
            Some(_) => json!({ "page": 1, "hitsPerPage": depth }),
            None => json!({ "offset": 0, "limit": depth }),
        }
    }

    /// The answer one node gives: `hits` (already cut), the slowest node's time and the total.
    pub fn answer(&self, hits: Vec<Value>, slowest: u64, total: u64) -> Value {
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

/// One hit of a node's answer, before the merge.
#[derive(Debug, Clone)]
pub struct Candidate {
    score: f64,
    position: u64,
    key: Value,
    hit: Map<String, Value>,
}

/// The answers of a federated search's nodes, gathered for the merge.
#[derive(Debug, Default)]
pub struct FederatedMerge {
    candidates: Vec<Candidate>,
    total: u64,
    slowest: u64,
    /// Per index of `facetsByIndex`: each node's facets of its shards, as a search answer's.
    facets: BTreeMap<String, Vec<Value>>,
}

impl FederatedMerge {
    /// Adds a node's answer to its part of the batch: `positions[i]` is the batch position of
    /// the node's query `i`; `queries` are the batch's; `primary_keys` by index.
    pub fn add(
        &mut self,
        body: &Value,
        positions: &[u64],
        queries: &[Value],
        primary_keys: &HashMap<String, String>,
    ) {
        self.total +=
            body["estimatedTotalHits"].as_u64().or_else(|| body["totalHits"].as_u64()).unwrap_or(0);
        self.slowest = self.slowest.max(body["processingTimeMs"].as_u64().unwrap_or(0));
        for (uid, facets) in body["facetsByIndex"].as_object().into_iter().flatten() {
            self.facets.entry(uid.clone()).or_default().push(json!({
                "facetDistribution": facets["distribution"],
                "facetStats": facets["stats"],
            }));
        }
        let hits = body["hits"].as_array().cloned().unwrap_or_default();
        self.candidates.extend(
            hits.into_iter().filter_map(|hit| candidate(hit, positions, queries, primary_keys)),
        );
    }

    /// Each node's facets of `uid`, as search answers, for [`merge_facets`].
    pub fn take_facets(&mut self, uid: &str) -> Vec<Value> {
        self.facets.remove(uid).unwrap_or_default()
    }

    /// The client's page of the merged hits: by weighted ranking score, then query position,
    /// then primary key.
    pub fn page(&mut self, page: &FederatedPage) -> Value {
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.position.cmp(&b.position))
                .then_with(|| compare_keys(&a.key, &b.key))
        });
        let hits: Vec<Value> = candidates
            .into_iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
            .map(|c| Value::Object(c.hit))
            .collect();
        page.answer(hits, self.slowest, self.total)
    }
}

/// `mergeFacets`: every index's facets as one, counts summed by value (in value order, cut to
/// `most` values per facet) and stats as the min of mins and max of maxes.
pub fn merge_indexes(by_index: &Map<String, Value>, most: usize) -> (Value, Value) {
    let answers: Vec<Value> = by_index
        .values()
        .map(|f| json!({ "facetDistribution": f["distribution"], "facetStats": f["stats"] }))
        .collect();
    let settings = MergeSettings {
        max_total_hits: 0,
        max_values_per_facet: most,
        sort_facet_values_by: vec![("*".to_owned(), "alpha".to_owned())],
        primary_key: String::new(),
        distinct_attribute: None,
    };
    merge_facets(&answers, &settings)
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

    #[test]
    fn hits_merge_by_score_then_position_then_key_and_totals_add_up() {
        let queries = vec![json!({"indexUid": "a"}), json!({"indexUid": "b"})];
        let keys: HashMap<String, String> =
            [("a".to_owned(), "id".to_owned()), ("b".to_owned(), "id".to_owned())].into();
        let hit = |id: u64, local: u64, score: f64| {
            json!({"id": id, "_federation": {"queriesPosition": local,
                                             "weightedRankingScore": score}})
        };
        let mut merge = FederatedMerge::default();
        // Node 1 answered for queries 0 and 1; node 2 for query 1 only.
        merge.add(
            &json!({"hits": [hit(10, 0, 0.5), hit(2, 1, 0.9)], "estimatedTotalHits": 5,
                    "processingTimeMs": 3}),
            &[0, 1],
            &queries,
            &keys,
        );
        merge.add(
            &json!({"hits": [hit(1, 0, 0.5), hit(9, 0, 0.5)], "estimatedTotalHits": 4,
                    "processingTimeMs": 7}),
            &[1],
            &queries,
            &keys,
        );
        let page = FederatedPage::of(&json!({"limit": 3}));
        let answer = merge.page(&page);
        let ids: Vec<(u64, u64)> = answer["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (h["id"].as_u64().unwrap(), h["_federation"]["queriesPosition"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(ids, vec![(2, 1), (10, 0), (1, 1)]);
        assert_eq!(answer["estimatedTotalHits"], 9);
        assert_eq!(answer["processingTimeMs"], 7);
    }

    #[test]
    fn merged_facets_sum_counts_over_indexes() {
        let by_index: Map<String, Value> = serde_json::from_value(json!({
            "a": {"distribution": {"color": {"red": 2, "blue": 1}},
                  "stats": {"price": {"min": 1.0, "max": 5.0}}},
            "b": {"distribution": {"color": {"red": 3}},
                  "stats": {"price": {"min": 0.5, "max": 4.0}}},
        }))
        .unwrap();
        let (distribution, stats) = merge_indexes(&by_index, 100);
        assert_eq!(distribution["color"], json!({"blue": 1, "red": 5}));
        assert_eq!(stats["price"], json!({"min": 0.5, "max": 5.0}));
    }
}
