//! The `sort` parameter and custom `field:asc|desc` ranking rules: parsing, the sortable check,
//! and the order Meilisearch gives values (numbers before strings, strings case-insensitively,
//! documents without the field last), plus `_geoPoint(lat, lng)` sorting by haversine distance.

use std::cmp::Ordering;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::index::{Document, Index};

use super::matching::field_values;
use super::tokenizer::normalize;

/// Earth radius Meilisearch uses for `_geoDistance`, in meters.
const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// One sort criterion.
#[derive(Debug, Clone, PartialEq)]
pub enum SortCriterion {
    Field { name: String, asc: bool },
    Geo { lat: f64, lng: f64, asc: bool },
}

/// A document's value for one criterion, comparable across documents.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Number(f64),
    Text(String),
    Missing,
}

fn invalid(message: String) -> ApiError {
    ApiError::new("invalid_search_sort", message)
}

fn parse_geo(expr: &str, asc: bool) -> Result<SortCriterion, ApiError> {
    let inner = expr
        .strip_prefix("_geoPoint(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid(format!("Invalid syntax for the geo parameter: expected expression formated like `_geoPoint(latitude, longitude)` and ending by `:asc` or `:desc`, found `{expr}`.")))?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let nums: Option<Vec<f64>> = parts.iter().map(|p| p.parse::<f64>().ok()).collect();
    match nums.as_deref() {
        Some([lat, lng]) => {
            if !(-90.0..=90.0).contains(lat) {
                return Err(invalid(format!("Bad latitude `{lat}`. Latitude must be contained between -90 and 90 degrees.")));
            }
            if !(-180.0..=180.0).contains(lng) {
                return Err(invalid(format!("Bad longitude `{lng}`. Longitude must be contained between -180 and 180 degrees.")));
            }
            Ok(SortCriterion::Geo { lat: *lat, lng: *lng, asc })
        }
        _ => Err(invalid(format!("Invalid syntax for the geo parameter: expected expression formated like `_geoPoint(latitude, longitude)` and ending by `:asc` or `:desc`, found `{expr}`."))),
    }
}

/// Parse one `field:asc|desc` or `_geoPoint(lat, lng):asc|desc` expression.
pub fn parse_criterion(text: &str) -> Result<SortCriterion, ApiError> {
    let (expr, dir) = text.rsplit_once(':').ok_or_else(|| {
        invalid(format!("Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found `{text}`."))
    })?;
    let asc = match dir {
        "asc" => true,
        "desc" => false,
        _ => {
            return Err(invalid(format!("Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found `{text}`.")))
        }
    };
    let expr = expr.trim();
    if expr.starts_with("_geoPoint") {
        return parse_geo(expr, asc);
    }
    if expr.starts_with("_geo") {
        return Err(invalid(format!("`{expr}` is a reserved keyword and thus can't be used as a sort expression. Use the _geoPoint(latitude, longitude) built-in rule to sort on _geo field coordinates.")));
    }
    if expr.is_empty() {
        return Err(invalid(format!("Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found `{text}`.")));
    }
    Ok(SortCriterion::Field { name: expr.to_string(), asc })
}

/// Whether `field` is sortable under the `sortableAttributes` setting (nested fields of a
/// sortable object are sortable too).
fn is_sortable(index: &Index, field: &str) -> bool {
    index.settings.sortable_attributes.iter().any(|s| {
        s == "*" || s == field || field.strip_prefix(s.as_str()).is_some_and(|r| r.starts_with('.'))
    })
}

/// Parse the query's `sort` list and check every field is sortable and the ranking rules hold
/// `sort`, with Meilisearch's messages.
pub fn parse_sort(index: &Index, sort: &[String]) -> Result<Vec<SortCriterion>, ApiError> {
    let mut out = Vec::new();
    for text in sort {
        let criterion = parse_criterion(text)?;
        let field = match &criterion {
            SortCriterion::Field { name, .. } => name.as_str(),
            SortCriterion::Geo { .. } => "_geo",
        };
        if !is_sortable(index, field) {
            let sortable = &index.settings.sortable_attributes;
            let available = if sortable.is_empty() {
                "This index does not have configured sortable attributes.".to_string()
            } else {
                let list: Vec<&str> = sortable.iter().map(String::as_str).collect();
                format!("Available sortable attributes are: `{}`.", list.join(", "))
            };
            return Err(invalid(format!(
                "Index `{}`: Attribute `{field}` is not sortable. {available}",
                index.uid
            )));
        }
        out.push(criterion);
    }
    if !out.is_empty() && !index.settings.ranking_rules.iter().any(|r| r == "sort") {
        return Err(invalid(format!(
            "Index `{}`: You must specify where `sort` is listed in the rankingRules setting to use the sort parameter at search time.",
            index.uid
        )));
    }
    Ok(out)
}

/// The `(lat, lng)` of a document's `_geo` field, when it has a valid one.
pub fn doc_geo(doc: &Document) -> Option<(f64, f64)> {
    let geo = doc.get("_geo")?;
    let coord = |v: Option<&Value>| match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    Some((coord(geo.get("lat"))?, coord(geo.get("lng"))?))
}

/// Haversine distance in meters, as Meilisearch computes `_geoDistance`.
pub fn haversine_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lng1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lng2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lng2 - lng1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// The value a document sorts by under `criterion` (for arrays, the smallest value when
/// ascending and the largest when descending).
pub fn sort_value(doc: &Document, criterion: &SortCriterion) -> SortValue {
    match criterion {
        SortCriterion::Geo { lat, lng, .. } => match doc_geo(doc) {
            Some(p) => SortValue::Number(haversine_m((*lat, *lng), p)),
            None => SortValue::Missing,
        },
        SortCriterion::Field { name, asc } => {
            let mut candidates = Vec::new();
            for v in field_values(doc, name) {
                collect_sortable(v, &mut candidates);
            }
            let pick = if *asc { Ordering::Less } else { Ordering::Greater };
            candidates.into_iter().fold(SortValue::Missing, |best, v| {
                if matches!(best, SortValue::Missing) || cmp_present(&v, &best) == pick {
                    v
                } else {
                    best
                }
            })
        }
    }
}

fn collect_sortable(v: &Value, out: &mut Vec<SortValue>) {
    match v {
        Value::Number(n) => out.extend(n.as_f64().map(SortValue::Number)),
        Value::String(s) => out.push(SortValue::Text(normalize(s))),
        Value::Bool(b) => out.push(SortValue::Text(b.to_string())),
        Value::Array(items) => items.iter().for_each(|i| collect_sortable(i, out)),
        _ => {}
    }
}

/// Order of two present values, ascending: numbers first, then strings.
fn cmp_present(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (SortValue::Number(x), SortValue::Number(y)) => x.total_cmp(y),
        (SortValue::Number(_), _) => Ordering::Less,
        (_, SortValue::Number(_)) => Ordering::Greater,
        (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        (SortValue::Text(_), SortValue::Missing) => Ordering::Less,
        (SortValue::Missing, SortValue::Text(_)) => Ordering::Greater,
        (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
    }
}

/// How two documents' values order under a criterion: missing values last whatever the
/// direction; numbers before strings.
pub fn compare(a: &SortValue, b: &SortValue, asc: bool) -> Ordering {
    match (a, b) {
        (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
        (SortValue::Missing, _) => Ordering::Greater,
        (_, SortValue::Missing) => Ordering::Less,
        (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
        (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
        _ if asc => cmp_present(a, b),
        _ => cmp_present(b, a),
    }
}

/// The direction of a criterion.
pub fn is_asc(criterion: &SortCriterion) -> bool {
    match criterion {
        SortCriterion::Field { asc, .. } | SortCriterion::Geo { asc, .. } => *asc,
    }
}

/// The `_rankingScoreDetails` entry of a criterion for one document.
pub fn details(doc: &Document, criterion: &SortCriterion, order: usize) -> Value {
    match criterion {
        SortCriterion::Geo { lat, lng, .. } => match doc_geo(doc) {
            Some(p) => json!({
                "order": order,
                "value": {"lat": p.0, "lng": p.1},
                "distance": haversine_m((*lat, *lng), p).round(),
            }),
            None => json!({ "order": order }),
        },
        SortCriterion::Field { name, asc } => {
            let mut out = json!({ "order": order });
            let value = field_values(doc, name).into_iter().next().cloned();
            if let Some(v) = value {
                let shown = match v {
                    Value::Array(items) => {
                        let pick = sort_value(
                            doc,
                            &SortCriterion::Field { name: name.clone(), asc: *asc },
                        );
                        items
                            .into_iter()
                            .find(|i| match (i, &pick) {
                                (Value::Number(n), SortValue::Number(p)) => n.as_f64() == Some(*p),
                                (Value::String(s), SortValue::Text(p)) => &normalize(s) == p,
                                _ => false,
                            })
                            .unwrap_or(Value::Null)
                    }
                    other => other,
                };
                if !shown.is_null() {
                    out["value"] = shown;
                }
            }
            out
        }
    }
}

/// The key a criterion is shown under in `_rankingScoreDetails`.
pub fn details_key(criterion: &SortCriterion) -> String {
    match criterion {
        SortCriterion::Field { name, asc } => {
            format!("{name}:{}", if *asc { "asc" } else { "desc" })
        }
        SortCriterion::Geo { lat, lng, asc } => {
            format!("_geoPoint({lat}, {lng}):{}", if *asc { "asc" } else { "desc" })
        }
    }
}

/// Orders documents by the `sort` of a documents browse (`GET/POST .../documents`): each
/// expression must be `field:asc|desc` on a sortable attribute (`invalid_document_sort`
/// otherwise); the ranking rules need not hold `sort`. The order is stable, so documents that
/// tie keep the index's order.
pub fn sort_documents(
    index: &Index,
    sort: &[String],
    documents: &mut [&Document],
) -> Result<(), ApiError> {
    let mut criteria = Vec::new();
    for text in sort {
        let criterion = parse_criterion(text)
            .map_err(|e| ApiError::new("invalid_document_sort", e.message.clone()))?;
        let field = match &criterion {
            SortCriterion::Field { name, .. } => name.as_str(),
            SortCriterion::Geo { .. } => "_geo",
        };
        if !is_sortable(index, field) {
            let sortable = &index.settings.sortable_attributes;
            let available = if sortable.is_empty() {
                "This index does not have configured sortable attributes.".to_string()
            } else {
                let list: Vec<&str> = sortable.iter().map(String::as_str).collect();
                format!("Available sortable attributes are: `{}`.", list.join(", "))
            };
            return Err(ApiError::new(
                "invalid_document_sort",
                format!("Attribute `{field}` is not sortable. {available}"),
            ));
        }
        criteria.push(criterion);
    }
    let mut keyed: Vec<(Vec<SortValue>, &Document)> = documents
        .iter()
        .map(|doc| (criteria.iter().map(|c| sort_value(doc, c)).collect(), *doc))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| {
        criteria
            .iter()
            .zip(a.iter().zip(b))
            .map(|(c, (x, y))| compare(x, y, is_asc(c)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    for (slot, (_, doc)) in documents.iter_mut().zip(keyed) {
        *slot = doc;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_geo_points() {
        assert_eq!(
            parse_criterion("price:desc").ok(),
            Some(SortCriterion::Field { name: "price".into(), asc: false })
        );
        assert_eq!(
            parse_criterion("_geoPoint(48.85, 2.35):asc").ok(),
            Some(SortCriterion::Geo { lat: 48.85, lng: 2.35, asc: true })
        );
        assert!(parse_criterion("price").is_err());
        assert!(parse_criterion("price:up").is_err());
    }

    #[test]
    fn geo_distance_matches_meilisearch_recording() {
        let d = haversine_m((48.85, 2.35), (50.1972, 3.8763));
        assert_eq!(d.round(), 185942.0);
        let d = haversine_m((48.85, 2.35), (42.7313, 2.1157));
        assert_eq!(d.round(), 680610.0);
    }

    #[test]
    fn missing_values_come_last_in_both_directions() {
        let n = SortValue::Number(1.0);
        let s = SortValue::Text("a".into());
        assert_eq!(compare(&n, &SortValue::Missing, false), Ordering::Less);
        assert_eq!(compare(&SortValue::Missing, &s, true), Ordering::Greater);
        assert_eq!(compare(&n, &s, false), Ordering::Less);
    }
}
