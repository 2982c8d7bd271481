//! Evaluation of a parsed filter against one document, with Meilisearch's facet semantics.
//!
//! An attribute path reaches into nested objects (and through arrays of objects); the values it
//! finds become facets: JSON numbers, and strings normalized (trimmed, lowercased) with booleans
//! as `"true"` / `"false"`. Array elements are facets one level deep. A condition holds when any
//! facet satisfies it; `!=`, `NOT IN` and `NOT` are complements over all documents.

use serde_json::{Map, Value};

use super::{geo, Filter, Op};

impl Filter {
    /// Whether a document (a JSON object) matches.
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        match self {
            Filter::And(items) => items.iter().all(|item| item.matches(doc)),
            Filter::Or(items) => items.iter().any(|item| item.matches(doc)),
            Filter::Not(inner) => !inner.matches(doc),
            Filter::Condition { attribute, op: Op::Exists } => exists(doc, &attribute.name),
            Filter::Condition { attribute, op } => Facets::new(doc, &attribute.name).satisfy(op),
            Filter::In { attribute, values } => {
                let facets = Facets::new(doc, &attribute.name);
                values.iter().any(|value| facets.equal(value))
            }
            Filter::GeoRadius { lat, lng, radius, .. } => {
                geo::within_radius(doc, [*lat, *lng], *radius)
            }
            Filter::GeoBoundingBox { top_right, bottom_left, .. } => {
                geo::within_bounding_box(doc, *top_right, *bottom_left)
            }
        }
    }
}

/// What a document holds at one attribute path.
struct Facets<'a> {
    /// The raw values found at the path.
    found: Vec<&'a Value>,
    numbers: Vec<f64>,
    /// Normalized strings.
    strings: Vec<String>,
}

impl<'a> Facets<'a> {
    fn new(doc: &'a Map<String, Value>, path: &str) -> Self {
        let mut found = Vec::new();
        collect(doc, path, &mut found);
        // Meilisearch reads `_geo` coordinates written as strings as numbers.
        let geo = path.starts_with("_geo.");
        let mut facets = Facets { found: Vec::new(), numbers: Vec::new(), strings: Vec::new() };
        for value in &found {
            match value {
                Value::Array(items) => items.iter().for_each(|item| facets.push(item, geo)),
                other => facets.push(other, geo),
            }
        }
        facets.found = found;
        facets
    }

    fn push(&mut self, value: &Value, geo: bool) {
        match value {
            Value::Bool(flag) => self.strings.push(flag.to_string()),
            Value::Number(number) => self.numbers.extend(number.as_f64()),
            Value::String(text) => match text.parse::<f64>() {
                Ok(number) if geo && number.is_finite() => self.numbers.push(number),
                _ => self.strings.push(normalize(text)),
            },
            Value::Null | Value::Array(_) | Value::Object(_) => {}
        }
    }

    fn satisfy(&self, op: &Op) -> bool {
        match op {
            Op::Equal(value) => self.equal(value),
            Op::NotEqual(value) => !self.equal(value),
            Op::GreaterThan(value) => self.compare(value, |a, b| a > b, |a, b| a > b),
            Op::GreaterThanOrEqual(value) => self.compare(value, |a, b| a >= b, |a, b| a >= b),
            Op::LowerThan(value) => self.compare(value, |a, b| a < b, |a, b| a < b),
            Op::LowerThanOrEqual(value) => self.compare(value, |a, b| a <= b, |a, b| a <= b),
            Op::Between { from, to } => {
                let numeric = number(from).zip(number(to)).is_some_and(|(low, high)| {
                    self.numbers.iter().any(|n| (low..=high).contains(n))
                });
                numeric
                    || self
                        .strings
                        .iter()
                        .any(|s| from.as_str() <= s.as_str() && s.as_str() <= to.as_str())
            }
            Op::Exists => !self.found.is_empty(),
            Op::Null => self.found.iter().any(|value| value.is_null()),
            Op::Empty => self.found.iter().any(|value| match value {
                Value::String(text) => text.is_empty(),
                Value::Array(items) => items.is_empty(),
                Value::Object(fields) => fields.is_empty(),
                _ => false,
            }),
            Op::StartsWith(prefix) => {
                let prefix = normalize(prefix);
                self.strings.iter().any(|s| s.starts_with(&prefix))
            }
        }
    }

    /// `=`: the normalized string, or the number the value spells.
    fn equal(&self, value: &str) -> bool {
        let normalized = normalize(value);
        self.strings.contains(&normalized)
            || number(value).is_some_and(|wanted| self.numbers.contains(&wanted))
    }

    /// A range operator: numbers against the value if it is a number, and, as Meilisearch does,
    /// normalized strings against the value as written, in byte order.
    fn compare(
        &self,
        value: &str,
        numbers: fn(f64, f64) -> bool,
        strings: fn(&str, &str) -> bool,
    ) -> bool {
        number(value).is_some_and(|bound| self.numbers.iter().any(|&n| numbers(n, bound)))
            || self.strings.iter().any(|s| strings(s, value))
    }
}

/// Every value at `path` in `object`: `a.b` reads `{"a": {"b": ..}}`, `{"a.b": ..}`, and each
/// object of an array at `a`.
fn collect<'a>(object: &'a Map<String, Value>, path: &str, out: &mut Vec<&'a Value>) {
    for (key, value) in object {
        if key == path {
            out.push(value);
        } else if let Some(rest) = path.strip_prefix(key.as_str()).and_then(|r| r.strip_prefix('.'))
        {
            descend(value, rest, out);
        }
    }
}

/// Whether `object` holds anything at `path`: [`collect`] stopped at the first value found,
/// with nothing allocated (a rebalance filters every document of a node by `EXISTS`).
fn exists(object: &Map<String, Value>, path: &str) -> bool {
    object.iter().any(|(key, value)| {
        key == path
            || path
                .strip_prefix(key.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| holds(value, rest))
    })
}

/// [`descend`] reduced to whether it finds anything.
fn holds(value: &Value, path: &str) -> bool {
    match value {
        Value::Object(fields) => exists(fields, path),
        Value::Array(items) => items.iter().any(|item| holds(item, path)),
        _ => false,
    }
}

fn descend<'a>(value: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Object(fields) => collect(fields, path, out),
        Value::Array(items) => items.iter().for_each(|item| descend(item, path, out)),
        _ => {}
    }
}

/// Meilisearch's facet normalization, without its Unicode decomposition.
fn normalize(text: &str) -> String {
    text.trim().to_lowercase()
}

/// The finite number a filter value spells, if any.
fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod exists_tests {
    use serde_json::json;

    use super::{collect, exists};

    /// The allocation-free `EXISTS` agrees with collecting the values at the path, over nested
    /// objects, arrays of objects, nested arrays, dotted key names, null and empty values.
    #[test]
    fn exists_agrees_with_collect() {
        let documents = [
            json!({"a": 1, "b": null, "c": [], "d": {}}),
            json!({"a": {"b": {"c": 3}}, "x": [{"y": 1}, {"z": 2}]}),
            json!({"a.b": {"c": null}, "x": [[{"y": [1]}], 4]}),
            json!({"_miroir_shard": {"s3": 1}, "id": "7"}),
            json!({"ab": 1, "a": [1, 2], "x": [{"y": {"z": []}}]}),
        ];
        let paths = [
            "a",
            "b",
            "c",
            "d",
            "a.b",
            "a.b.c",
            "x",
            "x.y",
            "x.z",
            "x.y.z",
            "_miroir_shard.s3",
            "_miroir_shard.s4",
            "_miroir_shard",
            "ab",
            "id",
            "missing",
        ];
        for document in documents {
            let object = document.as_object().unwrap();
            for path in paths {
                let mut found = Vec::new();
                collect(object, path, &mut found);
                assert_eq!(exists(object, path), !found.is_empty(), "{path} in {document}");
            }
        }
    }
}
