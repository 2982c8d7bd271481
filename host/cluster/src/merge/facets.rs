//! Combining facet counts and facet stats from several nodes.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{MergeSettings, RESERVED_PREFIX};

/// Summed `facetDistribution` cut to `maxValuesPerFacet` in the index's order, and
/// `facetStats` as min of mins and max of maxes.
pub fn merge_facets(answers: &[Value], settings: &MergeSettings) -> (Value, Value) {
    let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut stats: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for answer in answers {
        if let Some(Value::Object(dist)) = answer.get("facetDistribution") {
            for (facet, values) in dist.iter().filter(|(f, _)| !f.starts_with(RESERVED_PREFIX)) {
                let entry = counts.entry(facet.clone()).or_default();
                for (value, count) in values.as_object().into_iter().flatten() {
                    *entry.entry(value.clone()).or_insert(0) += count.as_u64().unwrap_or(0);
                }
            }
        }
        if let Some(Value::Object(st)) = answer.get("facetStats") {
            for (facet, s) in st {
                let (min, max) = (s["min"].as_f64(), s["max"].as_f64());
                if let (Some(min), Some(max)) = (min, max) {
                    let e = stats.entry(facet.clone()).or_insert((min, max));
                    e.0 = e.0.min(min);
                    e.1 = e.1.max(max);
                }
            }
        }
    }
    let distribution: Map<String, Value> = counts
        .into_iter()
        .map(|(facet, values)| {
            let by_count = sort_by_count(settings, &facet);
            let mut values: Vec<(String, u64)> = values.into_iter().collect();
            if by_count {
                values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            }
            values.truncate(settings.max_values_per_facet);
            let map: Map<String, Value> =
                values.into_iter().map(|(v, c)| (v, Value::from(c))).collect();
            (facet, Value::Object(map))
        })
        .collect();
    let stats: Map<String, Value> = stats
        .into_iter()
        .map(|(facet, (min, max))| (facet, serde_json::json!({ "min": min, "max": max })))
        .collect();
    (Value::Object(distribution), Value::Object(stats))
}

fn sort_by_count(settings: &MergeSettings, facet: &str) -> bool {
    let rule = |name: &str| {
        settings.sort_facet_values_by.iter().find(|(f, _)| f == name).map(|(_, v)| v.as_str())
    };
    rule(facet).or_else(|| rule("*")) == Some("count")
}
