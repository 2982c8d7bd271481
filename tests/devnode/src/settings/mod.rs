//! Index settings: every field Meilisearch 1.50 stores, with its defaults, validation and the
//! JSON shape `GET /indexes/{uid}/settings` answers.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod apply;
mod de;
mod embedders;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_apply;
#[cfg(test)]
mod tests_errors;
mod validate;

pub use validate::{patch_for_route, validate_patch};

/// The settings of one index, as `GET /indexes/{uid}/settings` returns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub displayed_attributes: Vec<String>,
    pub searchable_attributes: Vec<String>,
    /// Strings (attribute patterns) or granular objects (`{"attributePatterns": [...], "features": ...}`).
    pub filterable_attributes: Vec<Value>,
    pub sortable_attributes: BTreeSet<String>,
    pub ranking_rules: Vec<String>,
    pub stop_words: BTreeSet<String>,
    pub non_separator_tokens: BTreeSet<String>,
    pub separator_tokens: BTreeSet<String>,
    pub dictionary: BTreeSet<String>,
    pub synonyms: BTreeMap<String, Vec<String>>,
    pub distinct_attribute: Option<String>,
    pub proximity_precision: String,
    pub typo_tolerance: TypoTolerance,
    pub faceting: Faceting,
    pub pagination: Pagination,
    pub embedders: BTreeMap<String, Value>,
    pub search_cutoff_ms: Option<u64>,
    pub localized_attributes: Option<Value>,
    pub facet_search: bool,
    pub prefix_search: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypoTolerance {
    pub enabled: bool,
    pub min_word_size_for_typos: MinWordSizeForTypos,
    pub disable_on_words: BTreeSet<String>,
    pub disable_on_attributes: BTreeSet<String>,
    pub disable_on_numbers: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MinWordSizeForTypos {
    pub one_typo: u8,
    pub two_typos: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faceting {
    pub max_values_per_facet: usize,
    /// Facet name or `*` → `alpha` | `count`.
    pub sort_facet_values_by: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub max_total_hits: usize,
}

/// Meilisearch's default ranking rules (1.50).
pub const DEFAULT_RANKING_RULES: [&str; 7] =
    ["words", "typo", "proximity", "attributeRank", "sort", "wordPosition", "exactness"];

impl Default for Settings {
    fn default() -> Self {
        Self {
            displayed_attributes: vec!["*".into()],
            searchable_attributes: vec!["*".into()],
            filterable_attributes: Vec::new(),
            sortable_attributes: BTreeSet::new(),
            ranking_rules: DEFAULT_RANKING_RULES.iter().map(|r| r.to_string()).collect(),
            stop_words: BTreeSet::new(),
            non_separator_tokens: BTreeSet::new(),
            separator_tokens: BTreeSet::new(),
            dictionary: BTreeSet::new(),
            synonyms: BTreeMap::new(),
            distinct_attribute: None,
            proximity_precision: "byWord".into(),
            typo_tolerance: TypoTolerance {
                enabled: true,
                min_word_size_for_typos: MinWordSizeForTypos { one_typo: 5, two_typos: 9 },
                disable_on_words: BTreeSet::new(),
                disable_on_attributes: BTreeSet::new(),
                disable_on_numbers: false,
            },
            faceting: Faceting {
                max_values_per_facet: 100,
                sort_facet_values_by: BTreeMap::from([("*".to_string(), "alpha".to_string())]),
            },
            pagination: Pagination { max_total_hits: 1000 },
            embedders: BTreeMap::new(),
            search_cutoff_ms: None,
            localized_attributes: None,
            facet_search: true,
            prefix_search: "indexingTime".into(),
        }
    }
}

impl Settings {
    /// The attribute patterns that are filterable, from both the string and the object forms.
    pub fn filterable_patterns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for item in &self.filterable_attributes {
            match item {
                Value::String(s) => out.push(s.clone()),
                Value::Object(obj) => {
                    if let Some(Value::Array(patterns)) = obj.get("attributePatterns") {
                        out.extend(patterns.iter().filter_map(|p| p.as_str().map(String::from)));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The JSON object `GET /indexes/{uid}/settings` answers.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("settings serialize to JSON")
    }
}

/// Every settings field, in the order `GET /indexes/{uid}/settings` lists them (and the order of
/// the "expected one of" list of an unknown-field error).
const FIELDS: &[&str] = &[
    "displayedAttributes",
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "rankingRules",
    "stopWords",
    "nonSeparatorTokens",
    "separatorTokens",
    "dictionary",
    "synonyms",
    "distinctAttribute",
    "proximityPrecision",
    "typoTolerance",
    "faceting",
    "pagination",
    "embedders",
    "searchCutoffMs",
    "localizedAttributes",
    "facetSearch",
    "prefixSearch",
];

/// The settings sub-routes: kebab-case path segment → camelCase settings field.
pub const SUB_ROUTES: &[(&str, &str)] = &[
    ("displayed-attributes", "displayedAttributes"),
    ("searchable-attributes", "searchableAttributes"),
    ("filterable-attributes", "filterableAttributes"),
    ("sortable-attributes", "sortableAttributes"),
    ("ranking-rules", "rankingRules"),
    ("stop-words", "stopWords"),
    ("non-separator-tokens", "nonSeparatorTokens"),
    ("separator-tokens", "separatorTokens"),
    ("dictionary", "dictionary"),
    ("synonyms", "synonyms"),
    ("distinct-attribute", "distinctAttribute"),
    ("proximity-precision", "proximityPrecision"),
    ("typo-tolerance", "typoTolerance"),
    ("faceting", "faceting"),
    ("pagination", "pagination"),
    ("embedders", "embedders"),
    ("search-cutoff-ms", "searchCutoffMs"),
    ("localized-attributes", "localizedAttributes"),
    ("facet-search", "facetSearch"),
    ("prefix-search", "prefixSearch"),
];

/// The settings field of a sub-route segment, or None when the segment is not a settings route.
pub fn field_for_route(segment: &str) -> Option<&'static str> {
    SUB_ROUTES.iter().find(|(route, _)| *route == segment).map(|(_, field)| *field)
}

/// The patch `DELETE /indexes/{uid}/settings/<segment>` applies: `{ "<field>": null }`.
pub fn reset_patch_for_route(segment: &str) -> Option<Value> {
    field_for_route(segment).map(|field| {
        let mut patch = Map::new();
        patch.insert(field.to_string(), Value::Null);
        Value::Object(patch)
    })
}

/// The patch `DELETE /indexes/{uid}/settings` applies: every field set to null, keys sorted
/// like a validated patch.
pub fn reset_all_patch() -> Value {
    let mut fields: Vec<&str> = FIELDS.to_vec();
    fields.sort_unstable();
    Value::Object(fields.into_iter().map(|f| (f.to_string(), Value::Null)).collect())
}

impl Settings {
    /// The canonical JSON of one field (what `GET /indexes/{uid}/settings/<segment>` answers),
    /// or None when `field` is not a settings field.
    pub fn field_json(&self, field: &str) -> Option<Value> {
        match self.to_json() {
            Value::Object(mut fields) => fields.remove(field),
            _ => None,
        }
    }
}
