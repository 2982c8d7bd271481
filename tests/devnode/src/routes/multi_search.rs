//! `POST /multi-search`: several searches in one request, answered one by one, or merged into
//! one hit list by weighted ranking score when `federation` is given.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{auth, json_body, ok_json, restrict_body};
use crate::error::ApiError;
use crate::index::is_valid_index_uid;
use crate::search::{parse_search_body, run, Outcome, SearchQuery};
use crate::state::Node;

/// Meilisearch's default federated `limit`.
const DEFAULT_LIMIT: usize = 20;

/// One query of the request.
struct Query {
    index_uid: String,
    weight: f64,
    search: SearchQuery,
}

/// Federated paging: `limit`/`offset`, or `page`/`hitsPerPage`.
#[derive(Default)]
struct Federation {
    limit: Option<usize>,
    offset: Option<usize>,
    page: Option<usize>,
    hits_per_page: Option<usize>,
    /// `facetsByIndex`: index uid → facets asked.
    facets_by_index: Option<FacetsByIndex>,
    /// `mergeFacets`: `Some(maxValuesPerFacet)` when present.
    merge_facets: Option<Option<usize>>,
}

/// `facetsByIndex`: index uid → the facets asked of it.
type FacetsByIndex = Vec<(String, Vec<String>)>;

/// `facetsByIndex`, checked: an object of arrays of strings.
fn parse_facets_by_index(v: &Value) -> Result<Option<FacetsByIndex>, ApiError> {
    let code = "invalid_multi_search_facets_by_index";
    if v.is_null() {
        return Ok(None);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| type_error(code, ".federation.facetsByIndex", "an object", v))?;
    let mut out = Vec::new();
    for (uid, facets) in obj {
        let at = format!(".federation.facetsByIndex.{uid}");
        let list = facets.as_array().ok_or_else(|| type_error(code, &at, "an array", facets))?;
        let names = list
            .iter()
            .map(|f| {
                f.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| type_error(code, &at, "an array of strings", facets))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((uid.clone(), names));
    }
    Ok(Some(out))
}

/// `mergeFacets`, checked: `null` or `{maxValuesPerFacet}`.
fn parse_merge_facets(v: &Value) -> Result<Option<Option<usize>>, ApiError> {
    let code = "invalid_multi_search_merge_facets";
    match v {
        Value::Null => Ok(None),
        Value::Object(options) => match options.get("maxValuesPerFacet") {
            None | Some(Value::Null) => Ok(Some(None)),
            Some(n) => n.as_u64().map(|n| Some(Some(n as usize))).ok_or_else(|| {
                type_error(
                    code,
                    ".federation.mergeFacets.maxValuesPerFacet",
                    "a positive integer",
                    n,
                )
            }),
        },
        other => Err(type_error(code, ".federation.mergeFacets", "an object", other)),
    }
}

/// A per-query error: a 400 (authorization errors keep theirs) whose message says which query
/// failed.
fn inside(i: usize, err: ApiError) -> ApiError {
    let status = if err.error_type == "auth" { err.status } else { StatusCode::BAD_REQUEST };
    ApiError { status, message: format!("Inside `.queries[{i}]`: {}", err.message), ..err }
}

fn type_error(code: &str, at: &str, expected: &str, found: &Value) -> ApiError {
    ApiError::new(
        code,
        format!("Invalid value type at `{at}`: expected {expected}, but found `{found}`"),
    )
}

fn parse_federation(value: &Value) -> Result<Option<Federation>, ApiError> {
    let obj = match value {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        other => {
            return Err(type_error(
                "invalid_multi_search_federated",
                ".federation",
                "an object",
                other,
            ))
        }
    };
    let mut out = Federation::default();
    for (key, v) in obj {
        let count = |code: &str| {
            v.as_u64().map(|n| n as usize).ok_or_else(|| {
                type_error(code, &format!(".federation.{key}"), "a positive integer", v)
            })
        };
        match key.as_str() {
            "limit" => out.limit = Some(count("invalid_multi_search_federated")?),
            "offset" => out.offset = Some(count("invalid_multi_search_federated")?),
            "page" => out.page = Some(count("invalid_multi_search_federated")?),
            "hitsPerPage" => out.hits_per_page = Some(count("invalid_multi_search_federated")?),
            "facetsByIndex" => out.facets_by_index = parse_facets_by_index(v)?,
            "mergeFacets" => out.merge_facets = parse_merge_facets(v)?,
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown field `{other}` inside `.federation`: expected one of `limit`, `offset`, `page`, `hitsPerPage`, `facetsByIndex`, `mergeFacets`"),
                ))
            }
        }
    }
    Ok(Some(out))
}

fn parse_query(i: usize, value: &Value, federated: bool) -> Result<Query, ApiError> {
    let at = format!(".queries[{i}]");
    let obj =
        value.as_object().ok_or_else(|| type_error("bad_request", &at, "an object", value))?;
    let mut rest = obj.clone();
    let index_uid = match rest.remove("indexUid") {
        Some(Value::String(uid)) if is_valid_index_uid(&uid) => uid,
        Some(Value::String(uid)) => return Err(inside(i, super::invalid_index_uid(&uid))),
        Some(other) => {
            return Err(type_error(
                "invalid_index_uid",
                &format!("{at}.indexUid"),
                "a string",
                &other,
            ))
        }
        None => {
            return Err(ApiError::new(
                "missing_index_uid",
                format!("Missing field `indexUid` inside `{at}`"),
            ))
        }
    };
    let mut weight = 1.0;
    if let Some(options) = rest.remove("federationOptions").filter(|o| !o.is_null()) {
        if !federated {
            return Err(inside(
                i,
                ApiError::new(
                    "invalid_multi_search_federation_options",
                    format!("Using `federationOptions` is not allowed in a non-federated search.\n - Hint: remove `federationOptions` from query #{i} or add `federation` to the request."),
                ),
            ));
        }
        let obj = options.as_object().ok_or_else(|| {
            type_error(
                "invalid_multi_search_federation_options",
                &format!("{at}.federationOptions"),
                "an object",
                &options,
            )
        })?;
        for (key, v) in obj {
            match key.as_str() {
                "weight" => {
                    weight = v.as_f64().filter(|w| *w >= 0.0).ok_or_else(|| {
                        ApiError::new(
                            "invalid_multi_search_weight",
                            format!("Invalid value at `{at}.federationOptions.weight`: the value of `weight` is invalid, expected a positive float (>= 0.0)."),
                        )
                    })?
                }
                "remote" | "queryPosition" => {}
                other => {
                    return Err(ApiError::new(
                        "bad_request",
                        format!("Unknown field `{other}` inside `{at}.federationOptions`: expected one of `weight`, `remote`, `queryPosition`"),
                    ))
                }
            }
        }
    }
    if federated {
        if let Some(name) =
            ["limit", "offset", "page", "hitsPerPage"].iter().find(|k| rest.contains_key(**k))
        {
            return Err(inside(
                i,
                ApiError::new(
                    "invalid_multi_search_query_pagination",
                    format!("Using pagination options is not allowed in federated queries.\n - Hint: remove `{name}` from query #{i} or remove `federation` from the request\n - Hint: pass `federation.limit` and `federation.offset` for pagination in federated search"),
                ),
            ));
        }
    }
    if federated && rest.get("facets").is_some_and(|f| !f.is_null()) {
        return Err(inside(
            i,
            ApiError::new(
                "invalid_multi_search_query_facets",
                format!("Using facet options is not allowed in federated queries.\n - Hint: remove `facets` from query #{i} or remove `federation` from the request\n - Hint: pass `federation.facetsByIndex.{index_uid}: [\"facets\"]` for facets in federated search"),
            ),
        ));
    }
    let search = parse_search_body(&Value::Object(rest)).map_err(|e| inside(i, e))?;
    Ok(Query { index_uid, weight, search })
}

/// One hit of a federated search before rendering.
struct Merged {
    weighted: f64,
    query: usize,
    rank: usize,
}

/// Every hit of every query by weighted score (ties: earlier query, then better rank), each
/// document of an index once, at its best place.
fn merge(outcomes: &[Outcome<'_>], queries: &[Query]) -> Vec<Merged> {
    let mut merged: Vec<Merged> = Vec::new();
    for (qi, (o, q)) in outcomes.iter().zip(queries).enumerate() {
        merged.extend((0..o.len()).map(|rank| Merged {
            weighted: o.score(rank) * q.weight,
            query: qi,
            rank,
        }));
    }
    merged.sort_by(|a, b| {
        b.weighted.total_cmp(&a.weighted).then(a.query.cmp(&b.query)).then(a.rank.cmp(&b.rank))
    });
    let mut seen: HashSet<(&str, usize)> = HashSet::new();
    merged.retain(|m| {
        seen.insert((queries[m.query].index_uid.as_str(), outcomes[m.query].order(m.rank)))
    });
    merged
}

pub async fn multi_search(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let access = auth(&node, &headers, "search", None)?;
    let mut body = json_body(&headers, &body)?;
    if let Some(Value::Array(queries)) = body.get_mut("queries") {
        for query in queries {
            let index = query.get("indexUid").and_then(Value::as_str).unwrap_or_default();
            let rule = access.search_filter(index);
            restrict_body(query, rule);
        }
    }
    let obj = body.as_object().ok_or_else(|| type_error("bad_request", ".", "an object", &body))?;
    let mut federation = None;
    let mut raw_queries = None;
    for (key, v) in obj {
        match key.as_str() {
            "queries" => raw_queries = Some(v),
            "federation" => federation = parse_federation(v)?,
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown field `{other}`: expected one of `queries`, `federation`"),
                ))
            }
        }
    }
    let raw_queries =
        raw_queries.ok_or_else(|| ApiError::new("bad_request", "Missing field `queries`"))?;
    let list = raw_queries
        .as_array()
        .ok_or_else(|| type_error("bad_request", ".queries", "an array", raw_queries))?;
    let queries: Vec<Query> = list
        .iter()
        .enumerate()
        .map(|(i, q)| parse_query(i, q, federation.is_some()))
        .collect::<Result<_, _>>()?;
    for (i, q) in queries.iter().enumerate() {
        auth(&node, &headers, "search", Some(&q.index_uid)).map_err(|e| inside(i, e))?;
    }

    let db = node.db();
    let mut outcomes = Vec::with_capacity(queries.len());
    for (i, q) in queries.iter().enumerate() {
        let index = db
            .indexes
            .get(&q.index_uid)
            .ok_or_else(|| inside(i, ApiError::index_not_found(&q.index_uid)))?;
        outcomes.push(run(index, &q.search, None).map_err(|e| inside(i, e))?);
    }

    let Some(federation) = federation else {
        let results: Vec<Value> = outcomes
            .iter()
            .zip(&queries)
            .map(|(o, q)| {
                let mut answer = o.response(started);
                if let Value::Object(map) = &mut answer {
                    map.insert("indexUid".into(), Value::String(q.index_uid.clone()));
                }
                answer
            })
            .collect();
        return Ok(ok_json(json!({ "results": results })));
    };

    let merged = merge(&outcomes, &queries);
    let total = merged.len();
    let paged = federation.page.is_some() || federation.hits_per_page.is_some();
    let (from, count) = if paged {
        let per_page = federation.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        let page = federation.page.unwrap_or(1);
        (page.saturating_sub(1).saturating_mul(per_page), if page == 0 { 0 } else { per_page })
    } else {
        (federation.offset.unwrap_or(0), federation.limit.unwrap_or(DEFAULT_LIMIT))
    };
    let hits: Vec<Value> = merged
        .iter()
        .skip(from)
        .take(count)
        .map(|m| {
            let mut hit = outcomes[m.query].render(m.rank);
            hit.insert(
                "_federation".into(),
                json!({
                    "indexUid": queries[m.query].index_uid,
                    "queriesPosition": m.query,
                    "weightedRankingScore": m.weighted,
                }),
            );
            Value::Object(hit)
        })
        .collect();
    let mut out = Map::new();
    out.insert("hits".into(), Value::Array(hits));
    out.insert("processingTimeMs".into(), json!(started.elapsed().as_millis() as u64));
    if paged {
        let per_page = federation.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        out.insert("hitsPerPage".into(), json!(per_page));
        out.insert("page".into(), json!(federation.page.unwrap_or(1)));
        out.insert(
            "totalPages".into(),
            json!(if per_page == 0 { 0 } else { total.div_ceil(per_page) }),
        );
        out.insert("totalHits".into(), json!(total));
    } else {
        out.insert("limit".into(), json!(count));
        out.insert("offset".into(), json!(from));
        out.insert("estimatedTotalHits".into(), json!(total));
    }
    if let Some(wanted) = &federation.facets_by_index {
        let by_index = facets_by_index(&db, wanted, &outcomes, &queries)?;
        match federation.merge_facets {
            Some(most) => {
                let (distribution, stats) = merged_facets(&by_index, most.unwrap_or(100));
                out.insert("facetDistribution".into(), distribution);
                out.insert("facetStats".into(), stats);
            }
            None => {
                out.insert("facetsByIndex".into(), Value::Object(by_index));
            }
        }
    }
    Ok(ok_json(Value::Object(out)))
}

/// Each index's facets over the documents its queries matched (each document once).
fn facets_by_index(
    db: &crate::state::Db,
    wanted: &[(String, Vec<String>)],
    outcomes: &[Outcome<'_>],
    queries: &[Query],
) -> Result<Map<String, Value>, ApiError> {
    let mut by_index = Map::new();
    for (uid, names) in wanted {
        let index = db.indexes.get(uid).ok_or_else(|| ApiError::index_not_found(uid))?;
        let names = crate::search::facets::resolve_facets(index, names).map_err(|e| {
            ApiError::new(
                "invalid_multi_search_facets",
                format!("Inside `.federation.facetsByIndex.{uid}`: {}", e.message),
            )
        })?;
        let mut seen = HashSet::new();
        let mut docs = Vec::new();
        for (outcome, query) in outcomes.iter().zip(queries) {
            if &query.index_uid != uid {
                continue;
            }
            for (rank, doc) in outcome.documents().enumerate() {
                if seen.insert(outcome.order(rank)) {
                    docs.push(doc);
                }
            }
        }
        let (distribution, stats) =
            crate::search::facets::distribution(index, &names, docs.iter().copied());
        by_index.insert(uid.clone(), json!({ "distribution": distribution, "stats": stats }));
    }
    Ok(by_index)
}

/// `mergeFacets`: the indexes' facets as one (counts summed by value, in value order, at most
/// `most` values per facet; stats as the min of mins and max of maxes).
fn merged_facets(by_index: &Map<String, Value>, most: usize) -> (Value, Value) {
    let mut counts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
        Default::default();
    let mut stats: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    for facets in by_index.values() {
        for (name, values) in facets["distribution"].as_object().into_iter().flatten() {
            let entry = counts.entry(name.clone()).or_default();
            for (value, count) in values.as_object().into_iter().flatten() {
                *entry.entry(value.clone()).or_default() += count.as_u64().unwrap_or(0);
            }
        }
        for (name, s) in facets["stats"].as_object().into_iter().flatten() {
            if let (Some(min), Some(max)) = (s["min"].as_f64(), s["max"].as_f64()) {
                let e = stats.entry(name.clone()).or_insert((min, max));
                e.0 = e.0.min(min);
                e.1 = e.1.max(max);
            }
        }
    }
    let distribution: Map<String, Value> = counts
        .into_iter()
        .map(|(name, values)| {
            let values: Map<String, Value> =
                values.into_iter().take(most).map(|(v, c)| (v, json!(c))).collect();
            (name, Value::Object(values))
        })
        .collect();
    let stats: Map<String, Value> = stats
        .into_iter()
        .map(|(name, (min, max))| (name, json!({"min": min, "max": max})))
        .collect();
    (Value::Object(distribution), Value::Object(stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;

    fn index() -> Index {
        let mut index = Index::new("books", Some("id".into()), time::OffsetDateTime::UNIX_EPOCH);
        for (id, title) in [("1", "alpha beta"), ("2", "beta"), ("3", "gamma alpha")] {
            let doc = json!({"id": id, "title": title}).as_object().cloned().unwrap_or_default();
            index.note_fields(&doc);
            index.documents.insert(id.to_string(), doc);
        }
        index
    }

    fn code(value: Value, federated: bool) -> Option<String> {
        parse_query(1, &value, federated).err().map(|e| format!("{} {}", e.status.as_u16(), e.code))
    }

    #[test]
    fn queries_are_checked_like_meilisearch() {
        assert_eq!(code(json!({"q": "a"}), false).as_deref(), Some("400 missing_index_uid"));
        assert_eq!(
            code(json!({"indexUid": "b", "limit": 2}), true).as_deref(),
            Some("400 invalid_multi_search_query_pagination")
        );
        assert_eq!(
            code(json!({"indexUid": "b", "facets": ["x"]}), true).as_deref(),
            Some("400 invalid_multi_search_query_facets")
        );
        assert_eq!(
            code(json!({"indexUid": "b", "federationOptions": {"weight": 2}}), false).as_deref(),
            Some("400 invalid_multi_search_federation_options")
        );
        assert_eq!(
            code(json!({"indexUid": "b", "federationOptions": {"weight": -1}}), true).as_deref(),
            Some("400 invalid_multi_search_weight")
        );
        let err = parse_query(1, &json!({"indexUid": "b", "limit": "x"}), false).err();
        let message = err.map(|e| e.message).unwrap_or_default();
        assert!(message.starts_with("Inside `.queries[1]`: "), "{message}");
        let q = parse_query(
            0,
            &json!({"indexUid": "b", "q": "x", "federationOptions": {"weight": 0.5}}),
            true,
        );
        assert_eq!(q.map(|q| (q.index_uid, q.weight)).ok(), Some(("b".to_string(), 0.5)));
    }

    #[test]
    fn merged_facets_sum_counts_and_widen_stats_across_indexes() {
        let by_index = json!({
            "a": {"distribution": {"kind": {"x": 2, "y": 1}}, "stats": {"n": {"min": 1.0, "max": 4.0}}},
            "b": {"distribution": {"kind": {"y": 3, "z": 1}}, "stats": {"n": {"min": 0.5, "max": 2.0}}},
        });
        let (distribution, stats) = merged_facets(by_index.as_object().expect("object"), 2);
        assert_eq!(distribution, json!({"kind": {"x": 2, "y": 4}}));
        assert_eq!(stats, json!({"n": {"min": 0.5, "max": 4.0}}));
        let federation =
            parse_federation(&json!({"facetsByIndex": {"a": ["kind"]}, "mergeFacets": {}}))
                .expect("valid")
                .expect("federated");
        assert_eq!(
            federation.facets_by_index,
            Some(vec![("a".to_string(), vec!["kind".to_string()])])
        );
        assert_eq!(federation.merge_facets, Some(None));
        let bad = parse_federation(&json!({"facetsByIndex": {"a": "kind"}})).err().map(|e| e.code);
        assert_eq!(bad.as_deref(), Some("invalid_multi_search_facets_by_index"));
    }

    #[test]
    fn a_missing_index_is_a_400_naming_the_query() {
        let err = inside(3, ApiError::index_not_found("missing"));
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "index_not_found");
        assert_eq!(err.message, "Inside `.queries[3]`: Index `missing` not found.");
    }

    #[test]
    fn federation_merges_by_weighted_score_once_per_document() {
        let index = index();
        let query = |q: &str, weight: f64| Query {
            index_uid: "books".into(),
            weight,
            search: parse_search_body(&json!({ "q": q })).unwrap_or_default(),
        };
        let queries = vec![query("alpha", 0.5), query("beta", 1.0)];
        let outcomes: Vec<Outcome<'_>> =
            queries.iter().filter_map(|q| run(&index, &q.search, None).ok()).collect();
        let merged = merge(&outcomes, &queries);
        let got: Vec<(usize, usize)> =
            merged.iter().map(|m| (m.query, outcomes[m.query].order(m.rank))).collect();
        // "beta" (weight 1) gives documents 2 and 1 first; "alpha" (weight 0.5) adds only 3,
        // its document 1 being already placed.
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], (0, 2));
        assert!(
            merged[0].weighted >= merged[1].weighted && merged[1].weighted >= merged[2].weighted
        );
        assert!(merged[2].weighted <= 0.5);
    }
}
