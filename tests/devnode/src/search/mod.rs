//! Search: query parsing, matching, ranking and the answer's shape.
//!
//! [`parse_search_body`] and [`parse_search_params`] turn a request into a [`SearchQuery`];
//! [`search`] runs it on one index and answers Meilisearch 1.50's JSON. Every hit's
//! `_rankingScore` depends only on that document, the query and the settings (see
//! [`ranking`]), which is what lets Miroir merge the answers of several shards.

mod corpus;
pub(crate) mod facets;
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
pub mod vectors;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_features;
#[cfg(test)]
mod tests_recordings;

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::index::{Document, Index};

pub use facets::{check_facet_searchable, facet_search};
pub use params::parse_search_params;
pub use query::{parse_search_body, MatchingStrategy, SearchQuery};
pub use sort::sort_documents;

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
    /// Whether it comes from the semantic side of the search.
    semantic: bool,
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
        // `_geo` is indexed for geo search only and `_vectors` for semantic search, never as
        // text.
        all.retain(|f| f != "_geo" && f != vectors::VECTORS_FIELD);
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
    let typo_off = &index.settings.typo_tolerance.disable_on_attributes;
    let typo_free: Vec<bool> = fields
        .iter()
        .map(|(_, name)| typo_off.iter().any(|attr| facets::pattern_matches(attr, name)))
        .collect();
    let mut matcher = Matcher::new(&parsed.terms, stop).with_typo_free_fields(typo_free);
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
                semantic: false,
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
            let ranked = ranking::rank(doc, &rules, sort, Some(&kw));
            Some(Candidate { order, doc, ranked, semantic: false })
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

/// How the semantic part of a query runs: the embedder, the query vector and the share of
/// semantic results (`1.0`: semantic only).
struct SemanticPlan {
    embedder: String,
    vector: Option<Vec<f32>>,
    ratio: f32,
}

/// The semantic plan of `query`, checked against the index's embedders.
fn semantic_plan(index: &Index, query: &SearchQuery) -> Result<Option<SemanticPlan>, ApiError> {
    let Some(hybrid) = &query.hybrid else {
        if query.vector.is_some() {
            return Err(ApiError::new(
                "invalid_search_hybrid_query",
                "Passing `vector` as a parameter requires `hybrid` to also be specified.",
            ));
        }
        return Ok(None);
    };
    let hybrid = vectors::parse_hybrid(hybrid, &index.settings)?;
    let dimensions =
        vectors::check_embedder(&index.settings, &hybrid.embedder, "invalid_search_embedder")?;
    let vector: Option<Vec<f32>> =
        query.vector.as_ref().map(|v| v.iter().map(|x| *x as f32).collect());
    if let Some(v) = &vector {
        vectors::check_query_vector(v, dimensions)?;
    } else if hybrid.semantic_ratio > 0.0
        && query.q.as_deref().is_some_and(|q| !q.trim().is_empty())
    {
        // A user-provided embedder cannot embed the query text; an empty query needs no
        // embedding and runs as a placeholder search.
        let q = query.q.clone().unwrap_or_default();
        return Err(ApiError::new(
            "vector_embedding_error",
            format!("Error while generating embeddings: user error: attempt to embed the following text in a configuration where embeddings must be user provided: {q:?}"),
        ));
    }
    Ok(Some(SemanticPlan { embedder: hybrid.embedder, vector, ratio: hybrid.semantic_ratio }))
}

/// Every document passing the filter that has an embedding, by semantic score.
fn semantic_candidates<'a>(
    index: &'a Index,
    embedder: &str,
    vector: &[f32],
    filter: &filtering::DocFilter,
    exclude: Option<&str>,
) -> Vec<Candidate<'a>> {
    let mut hits: Vec<Candidate<'a>> = index
        .documents
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| exclude != Some(id.as_str()))
        .filter(|(_, (_, doc))| filter.matches(doc))
        .filter_map(|(order, (_, doc))| {
            let similarity = vectors::doc_similarity(doc, embedder, vector)?;
            let mut details = Map::new();
            details.insert("vectorSort".into(), json!({"order": 0, "similarity": similarity}));
            let ranked = Ranked { keys: Vec::new(), details, score: f64::from(similarity) };
            Some(Candidate { order, doc, ranked, semantic: true })
        })
        .collect();
    hits.sort_by(|a, b| b.ranked.score.total_cmp(&a.ranked.score).then(a.order.cmp(&b.order)));
    hits
}

/// A keyword hit list is good enough to skip the semantic search when it fills the page and
/// every hit on the page scores at least 0.45 once weighted by the keyword share.
fn keyword_good_enough(hits: &[Candidate<'_>], from: usize, count: usize, ratio: f32) -> bool {
    const GOOD_ENOUGH: f64 = 0.45;
    let end = from.saturating_add(count);
    hits.len() >= end
        && hits[from.min(hits.len())..end]
            .iter()
            .all(|c| c.ranked.score * f64::from(1.0 - ratio) >= GOOD_ENOUGH)
}

/// Merge keyword and semantic hits by their scores weighted by `1 - ratio` and `ratio`; a
/// document keeps its first (best) place.
fn merge_hybrid<'a>(
    keyword: Vec<Candidate<'a>>,
    semantic: Vec<Candidate<'a>>,
    ratio: f32,
) -> Vec<Candidate<'a>> {
    let weight = |c: &Candidate<'_>| {
        c.ranked.score * f64::from(if c.semantic { ratio } else { 1.0 - ratio })
    };
    let mut seen: HashSet<usize> = HashSet::new();
    let mut out = Vec::with_capacity(keyword.len() + semantic.len());
    let mut k = keyword.into_iter().peekable();
    let mut s = semantic.into_iter().peekable();
    loop {
        let take_keyword = match (k.peek(), s.peek()) {
            (Some(a), Some(b)) => weight(a) >= weight(b),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_keyword { k.next() } else { s.next() };
        if let Some(c) = next {
            if seen.insert(c.order) {
                out.push(c);
            }
        }
    }
    out
}

/// The `(offset, count)` of hits a query asks for.
fn requested_window(query: &SearchQuery) -> (usize, usize) {
    if query.page.is_some() || query.hits_per_page.is_some() {
        let per_page = query.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        let page = query.page.unwrap_or(1);
        (page.saturating_sub(1).saturating_mul(per_page), if page == 0 { 0 } else { per_page })
    } else {
        (query.offset.unwrap_or(0), query.limit.unwrap_or(DEFAULT_LIMIT))
    }
}

/// A query run on one index: every hit ranked, before paging, with what shaping a hit needs.
pub(crate) struct Outcome<'a> {
    index: &'a Index,
    query: &'a SearchQuery,
    hits: Vec<Candidate<'a>>,
    terms: Vec<terms::Term>,
    stop: HashSet<String>,
    geo_point: Option<(f64, f64)>,
    facet_names: Option<Vec<String>>,
    hybrid: bool,
    q: String,
}

/// Run `query` on `index`; `exclude` leaves one document out (`similar`).
pub(crate) fn run<'a>(
    index: &'a Index,
    query: &'a SearchQuery,
    exclude: Option<&str>,
) -> Result<Outcome<'a>, ApiError> {
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
    let plan = semantic_plan(index, query)?;
    let q = query.q.clone().unwrap_or_default();
    let mut parsed = terms::parse_query(&q, &index.settings);
    let stop: HashSet<String> =
        index.settings.stop_words.iter().map(|w| tokenizer::normalize(w)).collect();
    if !parsed.is_placeholder() {
        corpus::Corpus::new(index, &fields, stop.clone()).refine(&mut parsed.terms);
    }

    let semantic_only = plan
        .as_ref()
        .is_some_and(|p| p.vector.is_some() && (p.ratio >= 1.0 || parsed.is_placeholder()));
    let mut hits = if semantic_only {
        Vec::new()
    } else {
        let mut hits = candidates(index, query, &parsed, &fields, attributes, &sort, &filter);
        hits.retain(|c| exclude.is_none_or(|id| index.documents.get_index_of(id) != Some(c.order)));
        hits.sort_by(|a, b| ranking::compare(&a.ranked, &b.ranked).then(a.order.cmp(&b.order)));
        hits
    };
    if let Some(SemanticPlan { embedder, vector: Some(vector), ratio }) = &plan {
        let (from, count) = requested_window(query);
        if *ratio > 0.0 && (semantic_only || !keyword_good_enough(&hits, from, count, *ratio)) {
            let semantic = semantic_candidates(index, embedder, vector, &filter, exclude);
            hits = if semantic_only { semantic } else { merge_hybrid(hits, semantic, *ratio) };
        }
    }
    if let Some(threshold) = query.ranking_score_threshold {
        hits.retain(|c| c.ranked.score >= threshold);
    }
    if let Some(attribute) = &distinct {
        hits = apply_distinct(hits, attribute);
    }
    let geo_point = sort.iter().find_map(|c| match c {
        SortCriterion::Geo { lat, lng, .. } => Some((*lat, *lng)),
        SortCriterion::Field { .. } => None,
    });
    Ok(Outcome {
        index,
        query,
        hits,
        terms: parsed.terms,
        stop,
        geo_point,
        facet_names,
        hybrid: plan.is_some(),
        q,
    })
}

impl<'a> Outcome<'a> {
    /// How many documents matched.
    pub(crate) fn len(&self) -> usize {
        self.hits.len()
    }

    /// The global score of hit `i`.
    pub(crate) fn score(&self, i: usize) -> f64 {
        self.hits[i].ranked.score
    }

    /// The internal document order of hit `i` (which identifies the document in its index).
    pub(crate) fn order(&self, i: usize) -> usize {
        self.hits[i].order
    }

    /// The matched documents, best first.
    pub(crate) fn documents(&self) -> impl Iterator<Item = &'a Document> + Clone + '_ {
        self.hits.iter().map(|c| c.doc)
    }

    /// The hits Meilisearch serves: no more than `maxTotalHits`.
    fn reachable(&self) -> usize {
        self.hits.len().min(self.index.settings.pagination.max_total_hits)
    }

    /// Hit `i` as the answer shows it.
    pub(crate) fn render(&self, i: usize) -> Map<String, Value> {
        let c = &self.hits[i];
        let shape = format::HitFormat::new(self.index, self.query, &self.terms, &self.stop);
        let mut hit = shape.hit(c.doc);
        if let (Some(point), Some(at)) = (self.geo_point, sort::doc_geo(c.doc)) {
            hit.insert("_geoDistance".into(), json!(sort::haversine_m(point, at).round() as i64));
        }
        if self.query.show_ranking_score {
            hit.insert("_rankingScore".into(), json!(c.ranked.score));
        }
        if self.query.show_ranking_score_details {
            hit.insert("_rankingScoreDetails".into(), Value::Object(c.ranked.details.clone()));
        }
        hit
    }

    /// The page of hits the query asks for, and how many of them come from the semantic side.
    pub(crate) fn page(&self) -> (Vec<Value>, usize) {
        let (from, count) = requested_window(self.query);
        let reachable = self.reachable();
        let start = from.min(reachable);
        let end = from.saturating_add(count).min(reachable);
        let hits = (start..end).map(|i| Value::Object(self.render(i))).collect();
        let semantic = self.hits[start..end].iter().filter(|c| c.semantic).count();
        (hits, semantic)
    }

    /// The whole search answer.
    pub(crate) fn response(&self, started: Instant) -> Value {
        let query = self.query;
        let (page_hits, semantic_hits) = self.page();
        let total = self.hits.len();
        let mut out = Map::new();
        out.insert("hits".into(), Value::Array(page_hits));
        out.insert("query".into(), Value::String(self.q.clone()));
        out.insert("processingTimeMs".into(), json!(started.elapsed().as_millis() as u64));
        if query.page.is_some() || query.hits_per_page.is_some() {
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
        if let Some(names) = &self.facet_names {
            let (dist, stats) = facets::distribution(self.index, names, self.documents());
            out.insert("facetDistribution".into(), dist);
            out.insert("facetStats".into(), stats);
        }
        if self.hybrid {
            out.insert("semanticHitCount".into(), json!(semantic_hits));
        }
        if query.show_performance_details {
            out.insert("performanceDetails".into(), performance_details(started.elapsed()));
        }
        Value::Object(out)
    }
}

/// `performanceDetails` as Meilisearch shows it with `showPerformanceDetails`: span names to
/// human durations (`"648.03µs"`). This node measures only the whole search; the steps a real
/// node times separately are shown under their names with the whole time.
fn performance_details(elapsed: std::time::Duration) -> Value {
    let shown = format!("{elapsed:.2?}");
    let mut out = Map::new();
    for span in [
        "search",
        "search > execute local search",
        "search > execute local search > evaluate query",
        "search > execute local search > format",
        "search > execute local search > keyword ranking",
        "search > execute local search > tokenize query",
        "search > hydrate documents",
        "search > merge results",
        "wait in queue",
    ] {
        out.insert(span.into(), Value::String(shown.clone()));
    }
    Value::Object(out)
}

/// Run `query` on `index` and answer Meilisearch's search response. Meilisearch 1.50 reports
/// the totals uncapped (recorded: 2000 hits with the default `maxTotalHits` of 1000) but serves
/// no hit beyond `maxTotalHits`.
pub fn search(index: &Index, query: &SearchQuery) -> Result<Value, ApiError> {
    let started = Instant::now();
    Ok(run(index, query, None)?.response(started))
}
