//! `facetDistribution` and `facetStats`: which facets may be asked for (filterable attribute
//! patterns), how values are counted (strings case-insensitively under their first-seen form,
//! numbers under their shortest text, booleans as `true`/`false`, each value once per
//! document) and ordered (`alpha` by text, `count` by count) and cut (`maxValuesPerFacet`).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::index::{Document, Index};

use super::matching::field_values;
use super::tokenizer::normalize;

/// Whether an attribute pattern (`*`, `prefix*`, `*suffix`, `*infix*` or a name, whose nested
/// fields it also covers) matches `field`.
pub fn pattern_matches(pattern: &str, field: &str) -> bool {
    if pattern == "*" || pattern == field {
        return true;
    }
    if field.strip_prefix(pattern).is_some_and(|r| r.starts_with('.')) {
        return true;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') && rest.len() > 1 => {
            field.contains(&rest[..rest.len() - 1])
        }
        (Some(suffix), _) if !suffix.is_empty() => field.ends_with(suffix),
        (_, Some(prefix)) if !prefix.is_empty() => field.starts_with(prefix),
        _ => false,
    }
}

/// The filterable patterns as Meilisearch lists them in error messages.
fn available(index: &Index) -> String {
    let mut patterns = index.settings.filterable_patterns();
    patterns.sort();
    if patterns.is_empty() {
        "This index does not have configured filterable attributes.".into()
    } else {
        format!("Available filterable attributes patterns are: `{}`.", patterns.join(", "))
    }
}

/// The facets a `facets` list asks for, each checked to be filterable; patterns expand to the
/// index's known fields.
pub fn resolve_facets(index: &Index, facets: &[String]) -> Result<Vec<String>, ApiError> {
    let patterns = index.settings.filterable_patterns();
    let mut out: Vec<String> = Vec::new();
    for facet in facets {
        if facet.contains('*') {
            if !patterns.iter().any(|p| p == "*" || p == facet) {
                return Err(ApiError::new(
                    "invalid_search_facets",
                    format!(
                        "Invalid facet distribution: Pattern `{facet}` is not filterable. {}",
                        available(index)
                    ),
                ));
            }
            for field in &index.field_order {
                let filterable = patterns.iter().any(|p| pattern_matches(p, field));
                if pattern_matches(facet, field) && filterable && !out.contains(field) {
                    out.push(field.clone());
                }
            }
        } else if patterns.iter().any(|p| pattern_matches(p, facet)) {
            if !out.contains(facet) {
                out.push(facet.clone());
            }
        } else {
            return Err(ApiError::new(
                "invalid_search_facets",
                format!(
                    "Invalid facet distribution: Attribute `{facet}` is not filterable. {}",
                    available(index)
                ),
            ));
        }
    }
    Ok(out)
}

/// The text a number is shown under in a facet distribution (`2` for 2.0).
pub fn number_label(n: f64) -> String {
    format!("{n}")
}

/// One facet value, normalized for counting.
enum FacetValue {
    Text { key: String, shown: String },
    Number(f64),
}

fn collect(v: &Value, out: &mut Vec<FacetValue>) {
    match v {
        Value::String(s) => {
            out.push(FacetValue::Text { key: normalize(s.trim()), shown: s.clone() })
        }
        Value::Number(n) => out.extend(n.as_f64().map(FacetValue::Number)),
        Value::Bool(b) => out.push(FacetValue::Text { key: b.to_string(), shown: b.to_string() }),
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

/// Counts of one facet over `docs`, and its numeric min and max.
struct Tally {
    /// Normalized key → (shown text, count), in first-seen order.
    counts: HashMap<String, (String, u64)>,
    min: Option<f64>,
    max: Option<f64>,
}

fn tally<'a>(name: &str, docs: impl Iterator<Item = &'a Document>) -> Tally {
    let mut t = Tally { counts: HashMap::new(), min: None, max: None };
    for doc in docs {
        let mut values = Vec::new();
        for v in field_values(doc, name) {
            collect(v, &mut values);
        }
        let mut seen: Vec<String> = Vec::new();
        for value in values {
            let (key, shown) = match value {
                FacetValue::Text { key, shown } => (key, shown),
                FacetValue::Number(n) => {
                    t.min = Some(t.min.map_or(n, |m| m.min(n)));
                    t.max = Some(t.max.map_or(n, |m| m.max(n)));
                    let label = number_label(n);
                    (format!("\u{0}{label}"), label)
                }
            };
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            t.counts.entry(key).or_insert((shown, 0)).1 += 1;
        }
    }
    t
}

/// The `facetDistribution` and `facetStats` objects for `facets` over the matched documents.
pub fn distribution<'a>(
    index: &Index,
    facets: &[String],
    docs: impl Iterator<Item = &'a Document> + Clone,
) -> (Value, Value) {
    let max_values = index.settings.faceting.max_values_per_facet;
    let mut dist = Map::new();
    let mut stats = Map::new();
    for name in facets {
        let t = tally(name, docs.clone());
        let by_count = {
            let sort_by = &index.settings.faceting.sort_facet_values_by;
            sort_by.get(name.as_str()).or_else(|| sort_by.get("*")).is_some_and(|s| s == "count")
        };
        let mut entries: Vec<(String, u64)> = t.counts.into_values().collect();
        if by_count {
            entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        } else {
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        }
        entries.truncate(max_values);
        let values: Map<String, Value> = entries.into_iter().map(|(k, c)| (k, json!(c))).collect();
        dist.insert(name.clone(), Value::Object(values));
        if let (Some(min), Some(max)) = (t.min, t.max) {
            stats.insert(name.clone(), json!({"min": min, "max": max}));
        }
    }
    (Value::Object(dist), Value::Object(stats))
}

/// Whether a facet value (normalized) answers a facet query (normalized): the value starts with
/// the query, or with a form of it within the typos the query's first word allows.
fn facet_value_matches(value: &str, query: &str, typo: &crate::settings::TypoTolerance) -> bool {
    if query.is_empty() || value.starts_with(query) {
        return true;
    }
    let first = query.split_whitespace().next().unwrap_or(query);
    let allowed = super::typo::allowed_typos(first, typo);
    allowed > 0 && super::typo::typos(query, value, true, allowed).is_some()
}

/// The values of facet `name` over `docs` that answer `query`, with their counts: strings and
/// booleans only (Meilisearch does not search numbers), ordered by the facet's
/// `sortFacetValuesBy` and cut at `maxValuesPerFacet`.
pub fn facet_search<'a>(
    index: &Index,
    name: &str,
    query: &str,
    docs: impl Iterator<Item = &'a Document>,
) -> Vec<(String, u64)> {
    let wanted = normalize(query.trim());
    let typo = &index.settings.typo_tolerance;
    let t = tally(name, docs);
    let mut entries: Vec<(String, u64)> = t
        .counts
        .into_iter()
        .filter(|(key, _)| !key.starts_with('\u{0}'))
        .filter(|(key, _)| facet_value_matches(key, &wanted, typo))
        .map(|(_, v)| v)
        .collect();
    let by_count = {
        let sort_by = &index.settings.faceting.sort_facet_values_by;
        sort_by.get(name).or_else(|| sort_by.get("*")).is_some_and(|s| s == "count")
    };
    if by_count {
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    } else {
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    }
    entries.truncate(index.settings.faceting.max_values_per_facet);
    entries
}

/// Check that `name` may be facet-searched: facet search on and the attribute filterable.
pub fn check_facet_searchable(index: &Index, name: &str) -> Result<(), ApiError> {
    if !index.settings.facet_search {
        return Err(ApiError::new(
            "facet_search_disabled",
            "The facet search is disabled for this index. You can enable it by setting `facetSearch` to `true` in the index settings.",
        ));
    }
    let mut patterns = index.settings.filterable_patterns();
    if patterns.iter().any(|p| pattern_matches(p, name)) {
        return Ok(());
    }
    patterns.sort();
    let available = if patterns.is_empty() {
        "This index does not have configured filterable attributes.".to_string()
    } else {
        format!("Available facet-searchable attributes patterns are: `{}`.", patterns.join(", "))
    };
    Err(ApiError::new(
        "invalid_facet_search_facet_name",
        format!(
            "Attribute `{name}` is not facet-searchable. {available} To make it facet-searchable add it to the `filterableAttributes` index settings."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_names_nested_fields_and_wildcards() {
        assert!(pattern_matches("brand", "brand"));
        assert!(pattern_matches("brand", "brand.name"));
        assert!(!pattern_matches("brand", "brands"));
        assert!(pattern_matches("*", "x"));
        assert!(pattern_matches("price_*", "price_eur"));
        assert!(pattern_matches("*_id", "shop_id"));
        assert!(pattern_matches("*ric*", "price"));
    }

    #[test]
    fn numbers_show_as_shortest_text() {
        assert_eq!(number_label(2.0), "2");
        assert_eq!(number_label(1003.07), "1003.07");
    }

    #[test]
    fn strings_count_case_insensitively_under_first_seen_form() {
        let docs: Vec<Document> = [
            json!({"brand": "Acme", "tags": ["a", "a", "b"]}),
            json!({"brand": "ACME", "tags": ["b"]}),
            json!({"brand": "Zed", "n": 2.0}),
        ]
        .into_iter()
        .filter_map(|v| v.as_object().cloned())
        .collect();
        let mut index = Index::new("i", None, time::OffsetDateTime::UNIX_EPOCH);
        index.settings.filterable_attributes = vec![json!("*")];
        let facets = vec!["brand".to_string(), "tags".to_string(), "n".to_string()];
        let (dist, stats) = distribution(&index, &facets, docs.iter());
        assert_eq!(dist["brand"], json!({"Acme": 2, "Zed": 1}));
        assert_eq!(dist["tags"], json!({"a": 1, "b": 2}));
        assert_eq!(dist["n"], json!({"2": 1}));
        assert_eq!(stats, json!({"n": {"min": 2.0, "max": 2.0}}));
    }

    #[test]
    fn facet_search_matches_prefixes_and_typos_and_counts() {
        let docs: Vec<Document> = [
            json!({"brand": "Wayne", "n": 1}),
            json!({"brand": "Wonka"}),
            json!({"brand": "wayne"}),
            json!({"brand": "Acme"}),
            json!({"brand": "Stark Industries"}),
        ]
        .into_iter()
        .filter_map(|v| v.as_object().cloned())
        .collect();
        let mut index = Index::new("i", None, time::OffsetDateTime::UNIX_EPOCH);
        index.settings.filterable_attributes = vec![json!("brand")];
        let got = facet_search(&index, "brand", "w", docs.iter());
        assert_eq!(got, vec![("Wayne".to_string(), 2), ("Wonka".to_string(), 1)]);
        assert_eq!(facet_search(&index, "brand", "", docs.iter()).len(), 4);
        // One typo in a five-letter word: "stork" reaches "stark industries".
        let got = facet_search(&index, "brand", "stork", docs.iter());
        assert_eq!(got, vec![("Stark Industries".to_string(), 1)]);
        assert!(facet_search(&index, "n", "1", docs.iter()).is_empty(), "numbers are not searched");
        assert!(check_facet_searchable(&index, "brand").is_ok());
        let err = check_facet_searchable(&index, "color").err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("invalid_facet_search_facet_name"));
    }
}
