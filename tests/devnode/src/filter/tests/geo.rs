//! `_geoRadius` and `_geoBoundingBox` evaluation.

use serde_json::json;

use super::{ids, object, parse};
use crate::filter::haversine_meters;

#[test]
fn haversine_matches_geoutils() {
    assert_eq!(haversine_meters([27.740068, 85.337576], [27.740286, 85.337059]), 56.36);
    assert_eq!(haversine_meters([0.0, 0.0], [0.0, 0.0]), 0.0);
    let paris_london = haversine_meters([48.8566, 2.3522], [51.5074, -0.1278]);
    assert!((343_000.0..344_000.0).contains(&paris_london), "{paris_london}");
}

#[test]
fn radius_includes_points_within_the_distance() {
    // p1 sits in Paris (coordinates written as strings); p2 and p3 have no `_geo`.
    assert_eq!(ids("_geoRadius(48.8566, 2.3522, 0)"), ["p1"]);
    assert_eq!(ids("_geoRadius(48.86, 2.35, 1000)"), ["p1"]);
    assert!(ids("_geoRadius(51.5074, -0.1278, 300000)").is_empty());
    assert_eq!(ids("_geoRadius(51.5074, -0.1278, 350000)"), ["p1"]);
    assert_eq!(ids("NOT _geoRadius(48.86, 2.35, 1000)"), ["p0", "p2", "p3"]);
    assert_eq!(
        ids("_geoRadius(28.66, -134.96, 200) OR _geoRadius(48.86, 2.35, 1000)"),
        ["p0", "p1"]
    );
    let exact = haversine_meters([0.0, 0.0], [0.0, 1.0]);
    let doc = object(json!({"_geo": {"lat": 0, "lng": 1}}));
    assert!(parse(&format!("_geoRadius(0, 0, {exact})")).matches(&doc));
    assert!(!parse(&format!("_geoRadius(0, 0, {})", exact - 0.01)).matches(&doc));
}

#[test]
fn bounding_box_contains_its_edges() {
    assert_eq!(ids("_geoBoundingBox([49, 3], [48, 2])"), ["p1"]);
    assert_eq!(ids("_geoBoundingBox([48.8566, 2.3522], [48.8566, 2.3522])"), ["p1"]);
    assert!(ids("_geoBoundingBox([48.8, 3], [48, 2])").is_empty());
    assert_eq!(ids("_geoBoundingBox([90, 180], [-90, -180])"), ["p0", "p1"]);
    assert_eq!(ids("NOT _geoBoundingBox([49, 3], [48, 2])"), ["p0", "p2", "p3"]);
}

#[test]
fn bounding_box_across_the_antimeridian() {
    let fiji = object(json!({"_geo": {"lat": -17.7, "lng": 178.0}}));
    let samoa = object(json!({"_geo": {"lat": -13.8, "lng": -172.1}}));
    let peru = object(json!({"_geo": {"lat": -15.8, "lng": -70.0}}));
    let across = parse("_geoBoundingBox([0, -170], [-20, 170])");
    assert!(across.matches(&fiji));
    assert!(across.matches(&samoa));
    assert!(!across.matches(&peru));
    let not_across = parse("_geoBoundingBox([0, 170], [-20, -170])");
    assert!(!not_across.matches(&fiji));
    assert!(!not_across.matches(&samoa));
    assert!(not_across.matches(&peru));
}

#[test]
fn documents_without_a_usable_point_never_match() {
    let filter = parse("_geoRadius(0, 0, 1e7) OR _geoBoundingBox([90, 180], [-90, -180])");
    for doc in [
        json!({}),
        json!({"_geo": null}),
        json!({"_geo": {"lat": 1}}),
        json!({"_geo": {"lat": "north", "lng": 1}}),
        json!({"_geo": [1, 2]}),
    ] {
        assert!(!filter.matches(&object(doc.clone())), "{doc}");
    }
    assert!(filter.matches(&object(json!({"_geo": {"lat": "1.5", "lng": -2}}))));
}

#[test]
fn geo_fields_read_numeric_strings_as_numbers() {
    assert_eq!(ids("_geo.lat > 48"), ["p1"]);
    assert_eq!(ids("_geo.lng -180 TO 0"), ["p0"]);
}
