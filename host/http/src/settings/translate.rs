//! Translating settings between what the client sees and what the nodes hold.
//!
//! The nodes hold one piece of settings bookkeeping the client never sees: `_miroir_shard` in
//! `filterableAttributes`, so a shard can be read or deleted by filter. Every other setting,
//! `searchableAttributes` included, is the client's verbatim (see [`crate::bookkeeping`] for why
//! the shard marker needs no searchable translation).

use serde_json::{Map, Value};

use crate::bookkeeping::SHARD_FIELD;
use crate::tasks::derive::strip_shard_field;
use crate::tasks::Hints;

/// Every settings field, as `PATCH /indexes/{uid}/settings` names them, with its sub-route.
pub const FIELDS: &[(&str, &str)] = &[
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

/// The settings field of a sub-route (`ranking-rules` → `rankingRules`).
pub fn field_for_route(segment: &str) -> Option<&'static str> {
    FIELDS.iter().find(|(route, _)| *route == segment).map(|(_, field)| *field)
}

/// The patch that resets every field.
pub fn reset_all_patch() -> Map<String, Value> {
    FIELDS.iter().map(|(_, field)| ((*field).to_owned(), Value::Null)).collect()
}

/// A client patch translated for the nodes.
#[derive(Debug, Clone)]
pub struct NodePatch {
    /// What the nodes receive.
    pub patch: Map<String, Value>,
    /// How the task's details are shown to the client.
    pub hints: Hints,
}

/// Translates `client` for the nodes: `_miroir_shard` stays filterable whatever the client sets.
/// `new_index` adds it even when the client did not touch `filterableAttributes` (the index is
/// being created by this settings update).
pub fn to_node(client: &Map<String, Value>, new_index: bool) -> NodePatch {
    let mut patch = client.clone();
    let mut overrides = Map::new();
    match client.get("filterableAttributes") {
        Some(Value::Array(list)) => {
            let mut list = list.clone();
            if !list.iter().any(|v| v == SHARD_FIELD) {
                list.push(Value::from(SHARD_FIELD));
            }
            patch.insert("filterableAttributes".into(), Value::Array(list));
        }
        Some(Value::Null) => {
            overrides.insert("filterableAttributes".into(), Value::Null);
            patch.insert("filterableAttributes".into(), Value::from(vec![SHARD_FIELD]));
        }
        Some(_) => {}
        None if new_index => {
            patch.insert("filterableAttributes".into(), Value::from(vec![SHARD_FIELD]));
        }
        None => {}
    }
    let hints = Hints {
        node_details: true,
        settings: true,
        client_keys: client.keys().cloned().collect(),
        overrides,
        ..Hints::default()
    };
    NodePatch { patch, hints }
}

/// Rewrites a node's settings task details as the client's.
pub fn client_details(details: &mut Map<String, Value>, hints: &Hints) {
    details.retain(|key, _| hints.client_keys.iter().any(|k| k == key));
    if let Some(list) = details.get_mut("filterableAttributes") {
        strip_shard_field(list);
    }
    for (key, value) in &hints.overrides {
        details.insert(key.clone(), value.clone());
    }
}

/// Rewrites a node's settings object as the client's.
pub fn client_settings(settings: &mut Value) {
    if let Some(list) = settings.get_mut("filterableAttributes") {
        strip_shard_field(list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn filterable_keeps_the_shard_field_and_searchable_passes_through() {
        let out = to_node(
            &obj(json!({"filterableAttributes": ["brand"], "searchableAttributes": ["*"]})),
            false,
        );
        assert_eq!(out.patch["filterableAttributes"], json!(["brand", "_miroir_shard"]));
        assert_eq!(out.patch["searchableAttributes"], json!(["*"]));
        let mut details = obj(json!({"filterableAttributes": ["brand", "_miroir_shard"],
            "searchableAttributes": ["*"]}));
        client_details(&mut details, &out.hints);
        assert_eq!(
            Value::Object(details),
            json!({"filterableAttributes": ["brand"],
            "searchableAttributes": ["*"]})
        );
    }

    #[test]
    fn a_reset_reads_back_as_a_reset() {
        let out = to_node(&obj(json!({"filterableAttributes": null})), false);
        assert_eq!(out.patch["filterableAttributes"], json!(["_miroir_shard"]));
        let mut details = obj(json!({"filterableAttributes": ["_miroir_shard"]}));
        client_details(&mut details, &out.hints);
        assert_eq!(Value::Object(details), json!({"filterableAttributes": null}));
        let mut node =
            json!({"filterableAttributes": ["_miroir_shard"], "searchableAttributes": ["*"]});
        client_settings(&mut node);
        assert_eq!(node, json!({"filterableAttributes": [], "searchableAttributes": ["*"]}));
    }

    #[test]
    fn new_indexes_get_the_shard_field_filterable() {
        let out = to_node(&obj(json!({"stopWords": ["a"]})), true);
        assert_eq!(out.patch["filterableAttributes"], json!(["_miroir_shard"]));
        let mut details =
            obj(json!({"stopWords": ["a"], "filterableAttributes": ["_miroir_shard"]}));
        client_details(&mut details, &out.hints);
        assert_eq!(Value::Object(details), json!({"stopWords": ["a"]}));
    }
}
