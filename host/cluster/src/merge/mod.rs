//! Merging the answers of several nodes to one search into the answer one node holding every
//! document would give.
//!
//! Nodes are asked with `offset: 0`, `limit: offset + limit` and ranking score details on (see
//! [`node_request`]). Hits are then ordered rule by rule from their `_rankingScoreDetails`
//! ([`order`]), the client's page is cut, totals and facets are combined ([`facets`]), and
//! fields the client did not ask for are stripped.

mod browse;
mod facet_search;
mod facets;
mod federated;
mod hybrid;
mod order;
mod raw;
mod request;
mod similar;
mod whole;

use std::cmp::Ordering;

use serde_json::{Map, Value};

pub use browse::{browse_plan, ShardSlice};
pub use facet_search::merge_facet_search;
pub use facets::merge_facets;
pub use federated::{merge_indexes, FederatedMerge, FederatedPage};
pub use order::{compare_hits, RankKey};
pub use raw::merge_search_raw;
pub use request::{node_request, ClientPage, DEFAULT_SEARCH_LIMIT};
pub use similar::merge_similar;
pub use whole::{whole_answer, whole_answer_bytes};

/// The index settings the merge needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSettings {
    /// `pagination.maxTotalHits`: no hit beyond this rank is served.
    pub max_total_hits: usize,
    /// `faceting.maxValuesPerFacet`.
    pub max_values_per_facet: usize,
    /// `faceting.sortFacetValuesBy`: facet name or `*` → `alpha` | `count`.
    pub sort_facet_values_by: Vec<(String, String)>,
    /// The primary key, for deterministic tie-breaks.
    pub primary_key: String,
    /// The index's `distinctAttribute` setting, applied when the search names none.
    pub distinct_attribute: Option<String>,
}

/// Fields Miroir keeps on nodes for itself; never shown to clients.
pub const RESERVED_PREFIX: &str = "_miroir_";

/// Merge node answers (each a Meilisearch search response) to `client` (the client's request).
pub fn merge_search(client: &Value, answers: &[Value], settings: &MergeSettings) -> Value {
    let merged = merge_parts(client, answers, settings, &|_, _, hit| RankKey::of(hit));
    let mut out = Map::new();
    let hits = merged
        .page
        .iter()
        .map(|h| Value::Object(client_hit(h, merged.score, merged.details, &merged.hidden)))
        .collect();
    out.insert("hits".into(), Value::Array(hits));
    out.extend(merged.rest);
    Value::Object(out)
}

/// A merged search answer before its hits are written for the client.
struct Merged<'a> {
    /// The hits of the client's page, as the nodes sent them.
    page: Vec<&'a Map<String, Value>>,
    /// Whether the client asked for `_rankingScore` and `_rankingScoreDetails`.
    score: bool,
    details: bool,
    /// Fields added to the node request for the merge and not asked by the client.
    hidden: Vec<&'a str>,
    /// The answer's other members, in order, to follow `hits`.
    rest: Map<String, Value>,
}

/// How a hit ranks, from its answer's position, its own, and the hit.
type Rank<'a> = dyn Fn(usize, usize, &'a Map<String, Value>) -> RankKey<'a> + 'a;

fn merge_parts<'a>(
    client: &'a Value,
    answers: &'a [Value],
    settings: &'a MergeSettings,
    rank: &Rank<'a>,
) -> Merged<'a> {
    let page = ClientPage::from_request(client);
    let distinct_on =
        client.get("distinct").and_then(Value::as_str).or(settings.distinct_attribute.as_deref());
    let wanted = page.offset.saturating_add(page.limit).min(settings.max_total_hits);
    let hits = merge_sorted(answers, wanted, distinct_on, &settings.primary_key, rank);
    let total: u64 = answers.iter().map(|a| total_of(a, page.paged)).sum();
    let start = page.offset.min(hits.len());
    let score = client.get("showRankingScore").and_then(Value::as_bool).unwrap_or(false);
    let details = client.get("showRankingScoreDetails").and_then(Value::as_bool).unwrap_or(false);
    let hidden = added_fields(client, &settings.primary_key, distinct_on);
    let shown = hits.len().saturating_sub(start) as u64;

    let mut out = Map::new();
    out.insert("query".into(), client.get("q").cloned().unwrap_or_else(|| Value::from("")));
    out.insert("processingTimeMs".into(), Value::from(slowest(answers)));
    if page.paged {
        out.insert("hitsPerPage".into(), Value::from(page.per_page));
        out.insert("page".into(), Value::from(page.page));
        let pages = if page.per_page == 0 { 0 } else { total.div_ceil(page.per_page as u64) };
        out.insert("totalPages".into(), Value::from(pages));
        out.insert("totalHits".into(), Value::from(total));
    } else {
        out.insert("limit".into(), Value::from(page.limit));
        out.insert("offset".into(), Value::from(page.offset));
        out.insert("estimatedTotalHits".into(), Value::from(total));
    }
    if client.get("facets").is_some_and(|f| !f.is_null()) {
        let (distribution, stats) = facets::merge_facets(answers, settings);
        out.insert("facetDistribution".into(), distribution);
        out.insert("facetStats".into(), stats);
    }
    if client.get("showPerformanceDetails").and_then(Value::as_bool) == Some(true) {
        // The slowest node's timings: the merged answer took at least that long.
        let slowest_answer = answers.iter().max_by_key(|a| a["processingTimeMs"].as_u64());
        if let Some(details) = slowest_answer.and_then(|a| a.get("performanceDetails")) {
            out.insert("performanceDetails".into(), details.clone());
        }
    }
    if answers.iter().any(|a| a.get("semanticHitCount").is_some()) {
        let count = hybrid::semantic_hits(&hits[start..])
            .unwrap_or_else(|| semantic_hit_count(answers, shown));
        out.insert("semanticHitCount".into(), Value::from(count));
    }
    let mut hits = hits;
    let page = hits.split_off(start);
    Merged { page, score, details, hidden, rest: out }
}

/// `semanticHitCount` counts the hits of the answer that came from the semantic search. Hits
/// with ranking score details say so themselves ([`hybrid::semantic_hits`]); otherwise: nodes
/// report it for their own page, which says whether their hits were semantic; the merged page
/// holds `shown` hits: all semantic when every node's were, none when no node's were, and
/// otherwise at most what the nodes counted.
fn semantic_hit_count(answers: &[Value], shown: u64) -> u64 {
    let counted = |a: &Value| a["semanticHitCount"].as_u64().unwrap_or(0);
    let returned = |a: &Value| a["hits"].as_array().map_or(0, |h| h.len() as u64);
    if answers.iter().all(|a| counted(a) == returned(a)) {
        shown
    } else {
        answers.iter().map(counted).sum::<u64>().min(shown)
    }
}

fn total_of(answer: &Value, paged: bool) -> u64 {
    let key = if paged { "totalHits" } else { "estimatedTotalHits" };
    answer[key].as_u64().or_else(|| answer["totalHits"].as_u64()).unwrap_or(0)
}

fn slowest(answers: &[Value]) -> u64 {
    answers.iter().filter_map(|a| a["processingTimeMs"].as_u64()).max().unwrap_or(0)
}

/// The first `wanted` hits of the merged order. Each node's hits are already in ranking order,
/// so a k-way merge reads only the heads of the lists, not every hit. With `distinct_on`, a hit
/// whose value an earlier hit has is skipped (hits without the attribute are all kept).
fn merge_sorted<'a>(
    answers: &'a [Value],
    wanted: usize,
    distinct_on: Option<&str>,
    primary_key: &str,
    rank: &Rank<'a>,
) -> Vec<&'a Map<String, Value>> {
    let lists: Vec<&'a [Value]> =
        answers.iter().map(|a| a["hits"].as_array().map_or(&[][..], Vec::as_slice)).collect();
    let mut next = vec![0usize; lists.len()];
    let head = |list: usize, at: usize| {
        lists[list].get(at).and_then(Value::as_object).map(|h| (h, rank(list, at, h)))
    };
    let mut heads: Vec<Option<(&'a Map<String, Value>, RankKey<'a>)>> =
        (0..lists.len()).map(|l| head(l, 0)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(wanted);
    while out.len() < wanted {
        let best = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i, h)))
            .min_by(|(_, (a, ka)), (_, (b, kb))| {
                ka.cmp_rank(kb).then_with(|| tie_break(a, b, primary_key))
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let (hit, _) = heads[i].take().expect("the best head exists");
        next[i] += 1;
        heads[i] = head(i, next[i]);
        let keep = match distinct_on.and_then(|attr| hit.get(attr)) {
            None | Some(Value::Null) => true,
            Some(v) => seen.insert(v.to_string().to_lowercase()),
        };
        if keep {
            out.push(hit);
        }
    }
    out
}

/// Equal hits are ordered by primary key, so every instance merges the same way.
fn tie_break(a: &Map<String, Value>, b: &Map<String, Value>, pk: &str) -> Ordering {
    match (a.get(pk), b.get(pk)) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (x, y) => x.map(Value::to_string).cmp(&y.map(Value::to_string)),
    }
}

/// Fields the node request added to `attributesToRetrieve` for the merge (see
/// [`node_request`]) and the client did not ask for.
fn added_fields<'a>(
    client: &Value,
    primary_key: &'a str,
    distinct: Option<&'a str>,
) -> Vec<&'a str> {
    let Some(asked) = client.get("attributesToRetrieve").and_then(Value::as_array) else {
        return Vec::new();
    };
    if asked.iter().any(|f| f == "*") {
        return Vec::new();
    }
    [Some(primary_key), distinct]
        .into_iter()
        .flatten()
        .filter(|field| !asked.iter().any(|f| f == field))
        .collect()
}

/// A hit as the client asked for it: bookkeeping and merge-only fields stripped, scores only
/// when asked.
fn client_hit(
    hit: &Map<String, Value>,
    score: bool,
    details: bool,
    hidden: &[&str],
) -> Map<String, Value> {
    let mut out: Map<String, Value> = hit
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX) && !hidden.contains(&k.as_str()))
        .filter(|(k, _)| score || k.as_str() != "_rankingScore")
        .filter(|(k, _)| details || k.as_str() != "_rankingScoreDetails")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(Value::Object(formatted)) = out.get_mut("_formatted") {
        formatted.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
    }
    out
}

#[cfg(test)]
mod tests;
