//! `faceting.maxValuesPerFacet` over shards: the nodes keep more values per facet than the
//! client asked for.
//!
//! Each node cuts a facet's values at its `maxValuesPerFacet` before Miroir sums the counts. In
//! alphabetical order that cut is harmless (a value among the first `N` overall is among the
//! first `N` on every node holding it), but in count order a value ranked just below the cut on
//! every node can rank high overall, and a value cut on one node only is undercounted. So, once
//! a client touches `faceting` (the only way to order a facet by count), the nodes are given
//! [`node_value`] of the client's value, the client's value is recorded in the index's metadata
//! (`settings.faceting.maxValuesPerFacet`), and that is what reads answer and where the merge
//! cuts. An index whose metadata records no value holds the client's value on the nodes as is.

use miroir_store::IndexMeta;
use serde_json::{json, Map, Value};

use crate::tasks::Hints;

/// Meilisearch's default `maxValuesPerFacet`.
pub const DEFAULT_MAX_VALUES: u64 = 100;

/// What the nodes hold for a client's `maxValuesPerFacet` of `client`: four times as many values,
/// and at least a hundred more.
pub fn node_value(client: u64) -> u64 {
    client.saturating_mul(4).max(client.saturating_add(100))
}

/// The client's `maxValuesPerFacet` recorded for `meta`, if Miroir translated it.
pub fn client_value(meta: &IndexMeta) -> Option<u64> {
    meta.settings.pointer("/faceting/maxValuesPerFacet").and_then(Value::as_u64)
}

/// What a settings patch asks of `maxValuesPerFacet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The patch does not touch `faceting`, or touches it with a value the nodes must refuse.
    Untouched,
    /// `faceting` is touched and keeps the current value.
    Current,
    /// `faceting` is touched and sets this value (a reset sets the default).
    Value(u64),
}

/// What `patch` asks of `maxValuesPerFacet`.
pub fn requested(patch: &Map<String, Value>) -> Requested {
    match patch.get("faceting") {
        None => Requested::Untouched,
        Some(Value::Null) => Requested::Value(DEFAULT_MAX_VALUES),
        Some(Value::Object(faceting)) => match faceting.get("maxValuesPerFacet") {
            None => Requested::Current,
            Some(Value::Null) => Requested::Value(DEFAULT_MAX_VALUES),
            Some(value) => value.as_u64().map_or(Requested::Untouched, Requested::Value),
        },
        Some(_) => Requested::Untouched,
    }
}

/// Rewrites the nodes' `patch` so they hold [`node_value`] of `client`, and has the task show
/// the client's own `faceting` (kept from `client_patch`).
pub fn translate(
    client_patch: &Map<String, Value>,
    patch: &mut Map<String, Value>,
    hints: &mut Hints,
    client: u64,
) {
    let Some(faceting) = client_patch.get("faceting") else { return };
    let mut node = match faceting {
        Value::Object(fields) => fields.clone(),
        _ => {
            let mut reset = Map::new();
            reset.insert("sortFacetValuesBy".into(), Value::Null);
            reset
        }
    };
    node.insert("maxValuesPerFacet".into(), json!(node_value(client)));
    patch.insert("faceting".into(), Value::Object(node));
    hints.overrides.insert("faceting".into(), faceting.clone());
}

/// `settings` (a node's, as the client reads it) with the client's recorded value.
pub fn client_settings(settings: &mut Value, meta: &IndexMeta) {
    if let (Some(client), Some(faceting)) = (client_value(meta), settings.get_mut("faceting")) {
        if faceting.is_object() {
            faceting["maxValuesPerFacet"] = json!(client);
        }
    }
}

/// Records `client` as the index's `maxValuesPerFacet` in `meta`.
pub fn record(meta: &mut IndexMeta, client: u64) {
    if !meta.settings.is_object() {
        meta.settings = json!({});
    }
    let faceting = &mut meta.settings["faceting"];
    if !faceting.is_object() {
        *faceting = json!({});
    }
    faceting["maxValuesPerFacet"] = json!(client);
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn nodes_hold_more_values_than_the_client_sees() {
        assert_eq!(node_value(100), 400);
        assert_eq!(node_value(3), 103);
        assert_eq!(node_value(0), 100);
        assert_eq!(node_value(u64::MAX), u64::MAX);
    }

    #[test]
    fn what_a_patch_asks() {
        assert_eq!(requested(&obj(json!({"stopWords": []}))), Requested::Untouched);
        assert_eq!(requested(&obj(json!({"faceting": null}))), Requested::Value(100));
        assert_eq!(
            requested(&obj(json!({"faceting": {"sortFacetValuesBy": {"*": "count"}}}))),
            Requested::Current
        );
        assert_eq!(
            requested(&obj(json!({"faceting": {"maxValuesPerFacet": 7}}))),
            Requested::Value(7)
        );
        assert_eq!(
            requested(&obj(json!({"faceting": {"maxValuesPerFacet": null}}))),
            Requested::Value(100)
        );
        // Left for the nodes to refuse as one node does.
        assert_eq!(
            requested(&obj(json!({"faceting": {"maxValuesPerFacet": "7"}}))),
            Requested::Untouched
        );
        assert_eq!(requested(&obj(json!({"faceting": 3}))), Requested::Untouched);
    }

    #[test]
    fn the_nodes_get_more_and_the_task_shows_the_client_value() {
        let client =
            obj(json!({"faceting": {"maxValuesPerFacet": 7, "sortFacetValuesBy": {"*": "count"}}}));
        let mut patch = client.clone();
        let mut hints = Hints::default();
        translate(&client, &mut patch, &mut hints, 7);
        assert_eq!(
            patch["faceting"],
            json!({"maxValuesPerFacet": 107, "sortFacetValuesBy": {"*": "count"}})
        );
        assert_eq!(hints.overrides["faceting"], client["faceting"]);

        let reset = obj(json!({"faceting": null}));
        let mut patch = reset.clone();
        translate(&reset, &mut patch, &mut Hints::default(), 100);
        assert_eq!(patch["faceting"], json!({"maxValuesPerFacet": 400, "sortFacetValuesBy": null}));
    }

    #[test]
    fn reads_answer_the_recorded_client_value() {
        let mut meta = IndexMeta::new("p", 4, None, OffsetDateTime::UNIX_EPOCH);
        let mut node = json!({"faceting": {"maxValuesPerFacet": 107}});
        client_settings(&mut node, &meta);
        assert_eq!(node["faceting"]["maxValuesPerFacet"], 107, "nothing recorded: as held");
        record(&mut meta, 7);
        assert_eq!(client_value(&meta), Some(7));
        client_settings(&mut node, &meta);
        assert_eq!(node["faceting"]["maxValuesPerFacet"], 7);
    }
}
