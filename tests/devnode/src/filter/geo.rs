//! Geo rules: a document's `_geo` point, great-circle distances and bounding boxes.

use serde_json::{Map, Value};

/// The distance in meters between two `[latitude, longitude]` points, by the haversine formula
/// on a 6,371 km sphere, rounded to the millimeter (the `geoutils` computation Meilisearch uses).
pub fn haversine_meters(a: [f64; 2], b: [f64; 2]) -> f64 {
    let haversine = |theta: f64| (1.0 - theta.cos()) / 2.0;
    let (phi1, phi2) = (a[0].to_radians(), b[0].to_radians());
    let delta_lambda = b[1].to_radians() - a[1].to_radians();
    let total = haversine(phi2 - phi1) + phi1.cos() * phi2.cos() * haversine(delta_lambda);
    (2.0 * 6_371e3 * total.sqrt().asin() * 1000.0).round() / 1000.0
}

/// The document's `_geo` as `[lat, lng]`; coordinates may be numbers or numeric strings.
fn point(doc: &Map<String, Value>) -> Option<[f64; 2]> {
    let geo = doc.get("_geo")?.as_object()?;
    let coordinate = |name: &str| -> Option<f64> {
        let number = match geo.get(name)? {
            Value::Number(number) => number.as_f64()?,
            Value::String(text) => text.parse().ok()?,
            _ => return None,
        };
        Some(number).filter(|n| n.is_finite())
    };
    Some([coordinate("lat")?, coordinate("lng")?])
}

/// `_geoRadius`: within `radius` meters of `center`.
pub(super) fn within_radius(doc: &Map<String, Value>, center: [f64; 2], radius: f64) -> bool {
    point(doc).is_some_and(|p| haversine_meters(center, p) <= radius + f64::EPSILON)
}

/// `_geoBoundingBox`: inside the box, which wraps around the antimeridian when its left
/// longitude is greater than its right one.
pub(super) fn within_bounding_box(
    doc: &Map<String, Value>,
    top_right: [f64; 2],
    bottom_left: [f64; 2],
) -> bool {
    let Some([lat, lng]) = point(doc) else { return false };
    let ([top, right], [bottom, left]) = (top_right, bottom_left);
    let longitude = if right < left {
        (left..=180.0).contains(&lng) || (-180.0..=right).contains(&lng)
    } else {
        (left..=right).contains(&lng)
    };
    (bottom..=top).contains(&lat) && longitude
}
