//! Unit tests for the filter grammar, its messages, and its evaluation.

mod errors;
mod evaluation;
mod filterable;
mod geo;
mod grammar;

use serde_json::{json, Map, Value};

use super::{parse_filter, Filter};

/// Parses a filter string that must be valid and non-empty.
fn parse(text: &str) -> Filter {
    match parse_filter(&json!(text)) {
        Ok(Some(filter)) => filter,
        other => panic!("{text:?} should parse, got {other:?}"),
    }
}

/// The parsed tree, rendered like Meilisearch's `FilterCondition`.
fn show(text: &str) -> String {
    parse(text).to_string()
}

/// The message of a filter string that must be rejected.
fn error(text: &str) -> String {
    error_of(&json!(text))
}

fn error_of(value: &Value) -> String {
    match parse_filter(value) {
        Err(err) => err.message,
        Ok(parsed) => panic!("{value} should be rejected, got {parsed:?}"),
    }
}

/// The catalogue the evaluation tests filter.
fn catalogue() -> Vec<Value> {
    vec![
        json!({"id": "p0", "title": "Soylent refurbished camera X841", "brand": "Soylent",
               "category": "camera", "color": "black", "tags": ["refurbished"], "price": 1260.32,
               "rating": 3.2, "reviews": 18707, "year": 2019, "in_stock": true,
               "_geo": {"lat": 28.6604, "lng": -134.9611}}),
        json!({"id": "p1", "title": "Acme phone", "brand": "Acme", "category": "phone",
               "color": "White", "tags": ["new", "sale"], "price": 499, "rating": 4.0,
               "reviews": 120, "year": 2024, "in_stock": false, "discontinued_at": 2025,
               "_geo": {"lat": "48.8566", "lng": "2.3522"}}),
        json!({"id": "p2", "title": "Acme laptop", "brand": "ACME ", "category": "laptop",
               "color": null, "tags": [], "price": 1.5, "rating": 4.5, "reviews": 0,
               "year": "2024", "in_stock": true}),
        json!({"id": "p3", "title": "Globex tablet", "brand": "Globex", "category": "tablet",
               "tags": ["sale", ["nested"]], "price": 10, "rating": 2, "year": 2021,
               "specs": {"ram": 8, "ports": [{"kind": "usb"}, {"kind": "hdmi"}]},
               "specs.weight": "light", "notes": "", "extra": {}}),
    ]
}

/// The ids of the catalogue's documents that match `filter`.
fn ids(filter: &str) -> Vec<String> {
    let filter = parse(filter);
    catalogue()
        .iter()
        .filter_map(Value::as_object)
        .filter(|doc| filter.matches(doc))
        .map(|doc| doc["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields,
        other => panic!("{other} is not an object"),
    }
}
