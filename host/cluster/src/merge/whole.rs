//! The answer of one node that holds every document of the index: already what one node gives,
//! once the bookkeeping fields are taken out.

use serde_json::Value;

use super::RESERVED_PREFIX;

/// `answer` (a node's search answer to the client's own request) without bookkeeping: no
/// `_miroir_*` field in hits or their `_formatted`, no `_miroir_*` facet.
pub fn whole_answer(mut answer: Value) -> Value {
    if let Some(Value::Array(hits)) = answer.get_mut("hits") {
        for hit in hits.iter_mut().filter_map(Value::as_object_mut) {
            hit.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
            if let Some(Value::Object(formatted)) = hit.get_mut("_formatted") {
                formatted.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
            }
        }
    }
    for key in ["facetDistribution", "facetStats"] {
        if let Some(Value::Object(facets)) = answer.get_mut(key) {
            facets.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bookkeeping_is_taken_out_and_the_rest_kept() {
        let answer = json!({
            "hits": [{"id": 1, "_miroir_shard": {"s0": null}, "_rankingScore": 0.5,
                      "_formatted": {"id": "1", "_miroir_shard": {"s0": null}}}],
            "facetDistribution": {"brand": {"a": 1}, "_miroir_shard.s0": {}},
            "query": "x", "estimatedTotalHits": 1
        });
        assert_eq!(
            whole_answer(answer),
            json!({
                "hits": [{"id": 1, "_rankingScore": 0.5, "_formatted": {"id": "1"}}],
                "facetDistribution": {"brand": {"a": 1}},
                "query": "x", "estimatedTotalHits": 1
            })
        );
    }
}
