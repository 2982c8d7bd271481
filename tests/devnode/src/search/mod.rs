//! Search: query parsing, matching, ranking and the answer's shape.
//!
//! [`parse_search_body`] and [`parse_search_params`] turn a request into a [`SearchQuery`];
//! [`search`] runs it on one index and answers Meilisearch 1.50's JSON. Every hit's
//! `_rankingScore` depends only on that document, the query and the settings (see
//! [`ranking`]), which is what lets Miroir merge the answers of several shards.

mod corpus;
mod facets;
mod filtering;
mod format;
mod matching;
mod params;
mod query;
mod ranking;
mod sort;
mod terms;
mod tokenizer;
mod typo;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_recordings;

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::index::{Document, Index};

pub use params::parse_search_params;
pub use query::{parse_search_body, MatchingStrategy, SearchQuery};

use matching::{DocMatch, Matcher};
use ranking::{Keywords, Ranked};
use sort::SortCriterion;
use terms::ParsedQuery;

/// Meilisearch's default `limit` and `hitsPerPage`.
const DEFAULT_LIMIT: usize = 20;

/// One document that matched, with its ranking.
struct Candidate<'a> {
    order: usize,
    doc: &'a Document,
    ranked: Ranked,
}

/// The attributes this query searches, each with its weight (its index in the searchable
/// attributes), and the number of distinct weights. With the default `["*"]` every attribute
/// weighs the same (recorded: `attributeRank` never splits hits on a default index).
fn search_fields(
    index: &Index,
    query: &SearchQuery,
) -> Result<(Vec<(usize, String)>, usize), ApiError> {
    let mut all = index.searchable_fields();
    let star = index.settings.searchable_attributes.iter().any(|a| a == "*");
    if star {
        // `_geo` is indexed for geo search only, never as text.
        all.retain(|f| f != "_geo");
    }
    let weights = if star { 1 } else { all.len() };
    let weighted = |keep: &dyn Fn(&str) -> bool| -> Vec<(usize, String)> {
        all.iter()
            .enumerate()
            .filter(|(_, f)| keep(f))
            .map(|(i, f)| (if star { 0 } else { i }, f.clone()))
            .collect()
    };
    let Some(on) = &query.attributes_to_search_on else {
        return Ok((weighted(&|_| true), weights));
    };
    for name in on {
        if !all.iter().any(|f| facets::pattern_matches(name, f) || facets::pattern_matches(f, name))
        {
            return Err(ApiError::new(
                "invalid_search_attributes_to_search_on",
                format!(
                    "Attribute `{name}` is not searchable. Available searchable attributes are: `{}`.",
                    all.join(", ")
                ),
            ));
        }
    }
    let keep = |f: &str| on.iter().any(|name| facets::pattern_matches(name, f));
    Ok((weighted(&keep), weights))
}

/// The distinct attribute in force, checked to be filterable.
fn distinct_attribute(index: &Index, query: &SearchQuery) -> Result<Option<String>, ApiError> {
    let Some(name) = query.distinct.clone().or_else(|| index.settings.distinct_attribute.clone())
    else {
        return Ok(None);
    };
    if query.distinct.is_some() {
        let patterns = index.settings.filterable_patterns();
        if !patterns.iter().any(|p| facets::pattern_matches(p, &name)) {
            let mut sorted = patterns.clone();
            sorted.sort();
            let available = if sorted.is_empty() {
                "This index does not have configured filterable attributes.".to_string()
            } else {
                format!("Available filterable attributes patterns are: `{}`.", sorted.join(", "))
            };
            return Err(ApiError::new(
                "invalid_search_distinct",
                format!(
                    "Index `{}`: Attribute `{name}` is not filterable and thus, cannot be used as distinct attribute. {available}",
                    index.uid
                ),
            ));
        }
    }
    Ok(Some(name))
}

/// The terms a document keeps under the matching strategy, or `None` when it does not match.
fn kept_terms(
    strategy: MatchingStrategy,
    doc: &DocMatch,
    n: usize,
    removal: &[usize],
) -> Option<Vec<usize>> {
    match strategy {
        MatchingStrategy::All => (0..n).all(|t| doc.has(t)).then(|| (0..n).collect()),
        MatchingStrategy::Last => {
            let k = (0..n).take_while(|&t| doc.has(t)).count();
            (k > 0).then(|| (0..k).collect())
        }
        MatchingStrategy::Frequency => {
            let mut kept: Vec<usize> = (0..n).collect();
            for &drop in std::iter::once(&usize::MAX).chain(removal) {
                kept.retain(|&t| t != drop);
                if kept.is_empty() {
                    return None;
                }
                if kept.iter().all(|&t| doc.has(t)) {
                    return Some(kept);
                }
            }
            None
        }
    }
}

/// The order `frequency` drops terms in: the terms in most documents first, never the last one
/// standing.
fn removal_order(matches: &[(usize, &Document, DocMatch)], n: usize) -> Vec<usize> {
    let mut freq: Vec<(usize, usize)> =
        (0..n).map(|t| (t, matches.iter().filter(|(_, _, m)| m.has(t)).count())).collect();
    freq.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    freq.into_iter().map(|(t, _)| t).take(n.saturating_sub(1)).collect()
}

/// Rank every document that matches the query.
fn candidates<'a>(
    index: &'a Index,
    query: &SearchQuery,
    parsed: &ParsedQuery,
    fields: &[(usize, String)],
    attributes: usize,
    sort: &[SortCriterion],
    filter: &filtering::DocFilter,
) -> Vec<Candidate<'a>> {
    let rules = ranking::rules(&index.settings);
    let stop: HashSet<String> =
        index.settings.stop_words.iter().map(|w| tokenizer::normalize(w)).collect();
    let mut matcher = Matcher::new(&parsed.terms, stop);
    let passing = index
        .documents
        .values()
        .enumerate()
        .filter(|(_, doc)| filter.matches(doc))
        .filter(|(_, doc)| !matcher.contains_any(doc, fields, &parsed.negative));
    if parsed.is_placeholder() {
        return passing
            .map(|(order, doc)| Candidate {
                order,
                doc,
                ranked: ranking::rank(doc, &rules, sort, None),
            })
            .collect();
    }
    let passing: Vec<(usize, &Document)> = passing.collect();
    let n = parsed.terms.len();
    let matches: Vec<(usize, &Document, DocMatch)> = passing
        .into_iter()
        .map(|(order, doc)| (order, doc, matcher.analyse(doc, fields)))
        .filter(|(_, _, m)| (0..n).any(|t| m.has(t)))
        .collect();
    let removal = removal_order(&matches, n);
    let words_total = parsed.word_count();
    matches
        .into_iter()
        .filter_map(|(order, doc, m)| {
            let kept = kept_terms(query.matching_strategy, &m, n, &removal)?;
            let kw =
                Keywords { terms: &parsed.terms, doc: &m, kept: &kept, words_total, attributes };
            Some(Candidate { order, doc, ranked: ranking::rank(doc, &rules, sort, Some(&kw)) })
        })
        .collect()
}

/// Drop the hits whose distinct attribute value an earlier hit already has.
fn apply_distinct<'a>(hits: Vec<Candidate<'a>>, attribute: &str) -> Vec<Candidate<'a>> {
    let mut seen: HashSet<String> = HashSet::new();
    hits.into_iter()
        .filter(|c| {
            let mut values = Vec::new();
            for v in matching::field_values(c.doc, attribute) {
                match v {
                    Value::Array(items) => values.extend(items.iter().map(distinct_key)),
                    other => values.push(distinct_key(other)),
                }
            }
            values.retain(|v| !v.is_empty());
            if values.iter().any(|v| seen.contains(v)) {
                return false;
            }
            seen.extend(values);
            true
        })
        .collect()
}

fn distinct_key(v: &Value) -> String {
    match v {
        Value::String(s) => format!("s{}", tokenizer::normalize(s.trim())),
        Value::Number(n) => n.as_f64().map(|f| format!("n{f}")).unwrap_or_default(),
        Value::Bool(b) => format!("b{b}"),
        _ => String::new(),
    }
}

/// Run `query` on `index` and answer Meilisearch's search response.
pub fn search(index: &Index, query: &SearchQuery) -> Result<Value, ApiError> {
    let started = Instant::now();
    let sort = match &query.sort {
        Some(list) => sort::parse_sort(index, list)?,
        None => Vec::new(),
    };
    let facet_names = match &query.facets {
        Some(list) => Some(facets::resolve_facets(index, list)?),
        None => None,
    };
    let filter = filtering::DocFilter::new(index, query.filter.as_ref())?;
    let distinct = distinct_attribute(index, query)?;
    let (fields, attributes) = search_fields(index, query)?;
    let q = query.q.clone().unwrap_or_default();
    let mut parsed = terms::parse_query(&q, &index.settings);
    let stop: HashSet<String> =
        index.settings.stop_words.iter().map(|w| tokenizer::normalize(w)).collect();
    if !parsed.is_placeholder() {
        corpus::Corpus::new(index, &fields, stop.clone()).refine(&mut parsed.terms);
    }

    let mut hits = candidates(index, query, &parsed, &fields, attributes, &sort, &filter);
    if let Some(threshold) = query.ranking_score_threshold {
        hits.retain(|c| c.ranked.score >= threshold);
    }
    hits.sort_by(|a, b| ranking::compare(&a.ranked, &b.ranked).then(a.order.cmp(&b.order)));
    if let Some(attribute) = &distinct {
        hits = apply_distinct(hits, attribute);
    }

    // Meilisearch 1.50 reports the totals uncapped (recorded: 2000 hits with the default
    // `maxTotalHits` of 1000) but serves no hit beyond `maxTotalHits`.
    let total = hits.len();
    let reachable = total.min(index.settings.pagination.max_total_hits);
    let paged = query.page.is_some() || query.hits_per_page.is_some();
    let (from, count) = if paged {
        let per_page = query.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        let page = query.page.unwrap_or(1);
        (page.saturating_sub(1).saturating_mul(per_page), if page == 0 { 0 } else { per_page })
    } else {
        (query.offset.unwrap_or(0), query.limit.unwrap_or(DEFAULT_LIMIT))
    };
    let start = from.min(reachable);
    let end = from.saturating_add(count).min(reachable);

    let shape = format::HitFormat::new(index, query, &parsed.terms, &stop);
    let geo_point = sort.iter().find_map(|c| match c {
        SortCriterion::Geo { lat, lng, .. } => Some((*lat, *lng)),
        SortCriterion::Field { .. } => None,
    });
    let page_hits: Vec<Value> = hits[start..end]
        .iter()
        .map(|c| {
            let mut hit = shape.hit(c.doc);
            if let (Some(point), Some(at)) = (geo_point, sort::doc_geo(c.doc)) {
                hit.insert(
                    "_geoDistance".into(),
                    json!(sort::haversine_m(point, at).round() as i64),
                );
            }
            if query.show_ranking_score {
                hit.insert("_rankingScore".into(), json!(c.ranked.score));
            }
            if query.show_ranking_score_details {
                hit.insert("_rankingScoreDetails".into(), Value::Object(c.ranked.details.clone()));
            }
            Value::Object(hit)
        })
        .collect();

    let mut out = Map::new();
    out.insert("hits".into(), Value::Array(page_hits));
    out.insert("query".into(), Value::String(q));
    out.insert("processingTimeMs".into(), json!(started.elapsed().as_millis() as u64));
    if paged {
        let per_page = query.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        let pages = if per_page == 0 { 0 } else { total.div_ceil(per_page) };
        out.insert("hitsPerPage".into(), json!(per_page));
        out.insert("page".into(), json!(query.page.unwrap_or(1)));
        out.insert("totalPages".into(), json!(pages));
        out.insert("totalHits".into(), json!(total));
    } else {
        out.insert("limit".into(), json!(query.limit.unwrap_or(DEFAULT_LIMIT)));
        out.insert("offset".into(), json!(query.offset.unwrap_or(0)));
        out.insert("estimatedTotalHits".into(), json!(total));
    }
    if let Some(names) = facet_names {
        let (dist, stats) = facets::distribution(index, &names, hits.iter().map(|c| c.doc));
        out.insert("facetDistribution".into(), dist);
        out.insert("facetStats".into(), stats);
    }
    Ok(Value::Object(out))
}
