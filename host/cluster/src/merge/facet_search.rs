//! Merging `POST /indexes/{uid}/facet-search` answers: counts summed per facet value, then the
//! values ordered and cut as one node would.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::MergeSettings;

/// Merge node answers (`{"facetHits": [{"value", "count"}], ...}`) to `client`'s facet search.
pub fn merge_facet_search(client: &Value, answers: &[Value], settings: &MergeSettings) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for answer in answers {
        for hit in answer["facetHits"].as_array().into_iter().flatten() {
            if let Some(value) = hit["value"].as_str() {
                *counts.entry(value.to_owned()).or_insert(0) += hit["count"].as_u64().unwrap_or(0);
            }
        }
    }
    let facet = client["facetName"].as_str().unwrap_or_default();
    let by_count = settings
        .sort_facet_values_by
        .iter()
        .find(|(f, _)| f == facet)
        .or_else(|| settings.sort_facet_values_by.iter().find(|(f, _)| f == "*"))
        .is_some_and(|(_, order)| order == "count");
    let mut values: Vec<(String, u64)> = counts.into_iter().collect();
    if by_count {
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    values.truncate(settings.max_values_per_facet);
    let processing = answers.iter().filter_map(|a| a["processingTimeMs"].as_u64()).max();
    json!({
        "facetHits": values.into_iter().map(|(value, count)| json!({"value": value, "count": count})).collect::<Vec<_>>(),
        "facetQuery": client.get("facetQuery").cloned().unwrap_or(Value::Null),
        "processingTimeMs": processing.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_summed_per_value_and_sorted_as_configured() {
        let a = json!({"facetHits": [{"value": "Acme", "count": 2}, {"value": "Wonka", "count": 1}], "processingTimeMs": 1});
        let b = json!({"facetHits": [{"value": "Wonka", "count": 5}], "processingTimeMs": 4});
        let mut settings = MergeSettings {
            max_total_hits: 1000,
            max_values_per_facet: 10,
            sort_facet_values_by: vec![("*".into(), "alpha".into())],
            primary_key: "id".into(),
            distinct_attribute: None,
        };
        let client = json!({"facetName": "brand", "facetQuery": "w"});
        let merged = merge_facet_search(&client, &[a.clone(), b.clone()], &settings);
        assert_eq!(
            merged["facetHits"],
            json!([{"value": "Acme", "count": 2}, {"value": "Wonka", "count": 6}])
        );
        assert_eq!(merged["processingTimeMs"], 4);
        settings.sort_facet_values_by = vec![("brand".into(), "count".into())];
        let merged = merge_facet_search(&client, &[a, b], &settings);
        assert_eq!(merged["facetHits"][0]["value"], "Wonka");
    }
}
