//! Evaluation against documents, with Meilisearch's facet semantics.

use serde_json::json;

use super::{ids, object, parse};

#[test]
fn equality_is_case_insensitive_and_numeric() {
    assert_eq!(ids("brand = acme"), ["p1", "p2"]);
    assert_eq!(ids("brand = 'ACME'"), ["p1", "p2"]);
    assert_eq!(ids("color = white"), ["p1"]);
    assert_eq!(ids("year = 2024"), ["p1", "p2"]);
    assert_eq!(ids("price = 1.5"), ["p2"]);
    assert_eq!(ids("price = 499.0"), ["p1"]);
    assert_eq!(ids("rating = 4"), ["p1"]);
    assert_eq!(ids("price = '10'"), ["p3"]);
    assert_eq!(ids("in_stock = true"), ["p0", "p2"]);
    assert_eq!(ids("in_stock = FALSE"), ["p1"]);
    assert_eq!(ids("title = 'acme phone'"), ["p1"]);
    assert!(ids("title = acme").is_empty());
    assert!(ids("color = null").is_empty());
}

#[test]
fn inequality_and_not_are_complements() {
    assert_eq!(ids("brand != acme"), ["p0", "p3"]);
    assert_eq!(ids("color != black"), ["p1", "p2", "p3"]);
    assert_eq!(ids("NOT color = black"), ["p1", "p2", "p3"]);
    assert_eq!(ids("discontinued_at != 2025"), ["p0", "p2", "p3"]);
    assert_eq!(ids("NOT NOT brand = globex"), ["p3"]);
}

#[test]
fn in_and_not_in() {
    assert_eq!(ids("category IN [camera, Tablet]"), ["p0", "p3"]);
    assert_eq!(ids("year IN [2019, 2021]"), ["p0", "p3"]);
    assert_eq!(ids("category NOT IN [camera, tablet]"), ["p1", "p2"]);
    assert!(ids("category IN []").is_empty());
    assert_eq!(ids("category NOT IN []").len(), 4);
}

#[test]
fn ranges_on_numbers() {
    assert_eq!(ids("price > 499"), ["p0"]);
    assert_eq!(ids("price >= 499"), ["p0", "p1"]);
    assert_eq!(ids("price < 10"), ["p2"]);
    assert_eq!(ids("price <= 10"), ["p2", "p3"]);
    assert_eq!(ids("price 1.5 TO 499"), ["p1", "p2", "p3"]);
    assert!(ids("price 500 TO 10").is_empty());
    assert_eq!(ids("rating 3 TO 4"), ["p0", "p1"]);
    assert_eq!(ids("reviews >= 1e3"), ["p0"]);
    assert_eq!(ids("NOT price > 100"), ["p2", "p3"]);
}

#[test]
fn ranges_compare_strings_in_byte_order() {
    // Numeric strings are strings: "2024" only meets string bounds.
    assert_eq!(ids("year > 2020"), ["p1", "p2", "p3"]);
    assert_eq!(ids("year >= '2024'"), ["p1", "p2"]);
    assert_eq!(ids("category > m"), ["p1", "p3"]);
    assert_eq!(ids("category b TO d"), ["p0"]);
    // Document strings are normalized, bounds are not: "camera" > "Camera".
    assert_eq!(ids("category > Camera"), ["p0", "p1", "p2", "p3"]);
    assert!(ids("rating > abc").is_empty());
    // meilisearch/meilisearch#6335: the lowercased `t` of a stored timestamp sorts after the
    // bound's `T`, so both documents pass.
    let early = object(json!({"released": "2026-01-01T00:00:00"}));
    let late = object(json!({"released": "2026-01-01T01:02:03"}));
    let filter = parse("released > \"2026-01-01T01:00:00\"");
    assert!(filter.matches(&early) && filter.matches(&late));
    assert!(!parse("released > \"2026-01-01t01:00:00\"").matches(&early));
}

#[test]
fn exists_null_and_empty() {
    assert_eq!(ids("color EXISTS"), ["p0", "p1", "p2"]);
    assert_eq!(ids("color NOT EXISTS"), ["p3"]);
    assert_eq!(ids("discontinued_at EXISTS"), ["p1"]);
    assert_eq!(ids("color IS NULL"), ["p2"]);
    assert_eq!(ids("color IS NOT NULL"), ["p0", "p1", "p3"]);
    assert_eq!(ids("tags IS EMPTY"), ["p2"]);
    assert_eq!(ids("notes IS EMPTY OR extra IS EMPTY"), ["p3"]);
    assert_eq!(ids("extra IS EMPTY"), ["p3"]);
    assert_eq!(ids("title IS NOT EMPTY"), ["p0", "p1", "p2", "p3"]);
    assert!(ids("missing IS EMPTY OR missing IS NULL OR missing EXISTS").is_empty());
}

#[test]
fn arrays_match_when_any_element_does() {
    assert_eq!(ids("tags = sale"), ["p1", "p3"]);
    assert_eq!(ids("tags = SALE AND tags = new"), ["p1"]);
    assert_eq!(ids("tags != sale"), ["p0", "p2"]);
    assert!(ids("tags = nested").is_empty(), "arrays are faceted one level deep");
    let doc = object(json!({"scores": [1, 5, 9]}));
    assert!(parse("scores > 8").matches(&doc));
    assert!(parse("scores 2 TO 6").matches(&doc));
    assert!(!parse("scores 6 TO 8").matches(&doc));
    assert!(parse("scores < 2 AND scores > 8").matches(&doc));
}

#[test]
fn nested_fields() {
    assert_eq!(ids("specs.ram = 8"), ["p3"]);
    assert_eq!(ids("specs.ram > 4"), ["p3"]);
    assert_eq!(ids("specs.ports.kind = hdmi"), ["p3"]);
    assert_eq!(ids("specs.weight = light"), ["p3"]);
    assert_eq!(ids("specs.ports.kind EXISTS"), ["p3"]);
    assert!(ids("specs = 8").is_empty());
    let doc = object(json!({"a": {"b.c": 1, "b": {"c": 2}}, "a.b": {"c": 3}}));
    assert!(parse("a.b.c = 1 AND a.b.c = 2 AND a.b.c = 3").matches(&doc));
    assert!(!parse("a.b.c = 4").matches(&doc));
}

#[test]
fn precedence_in_evaluation() {
    // `a OR b AND c` is `a OR (b AND c)`.
    assert_eq!(ids("brand = soylent OR brand = acme AND price < 100"), ["p0", "p2"]);
    assert_eq!(ids("(brand = soylent OR brand = acme) AND price < 100"), ["p2"]);
    // `NOT a AND b` is `(NOT a) AND b`.
    assert_eq!(ids("NOT brand = acme AND price < 100"), ["p3"]);
    assert_eq!(ids("NOT (brand = acme AND price < 100)"), ["p0", "p1", "p3"]);
}

#[test]
fn starts_with_reads_normalized_strings() {
    assert_eq!(ids("title STARTS WITH acme"), ["p1", "p2"]);
    assert_eq!(ids("title NOT STARTS WITH 'ACME '"), ["p0", "p3"]);
    assert!(ids("price STARTS WITH 1").is_empty());
}

#[test]
fn array_form_evaluates_as_and_of_ors() {
    let filter =
        super::super::parse_filter(&json!(["price < 1000", ["brand = acme", "brand = globex"]]));
    let filter = filter.ok().flatten().map(|f| f.to_string());
    assert_eq!(
        filter.as_deref(),
        Some("AND[{price} < {1000}, OR[{brand} = {acme}, {brand} = {globex}, ], ]")
    );
    let parsed = parse("price < 1000 AND (brand = acme OR brand = globex)");
    let matching: Vec<_> = super::catalogue()
        .iter()
        .filter_map(|doc| doc.as_object())
        .filter(|doc| parsed.matches(doc))
        .map(|doc| doc["id"].clone())
        .collect();
    assert_eq!(matching, [json!("p1"), json!("p2"), json!("p3")]);
}
