//! Merging the answers to one `similar` request.
//!
//! The node holding the reference document answers `similar` itself; every other node of the
//! covering set answers a vector search with the reference document's embedding (the same
//! semantic score, so the same `vectorSort` details). Both are ordered and paged like a search;
//! the answer then takes the shape one node gives `similar`.

use serde_json::{Map, Value};

use super::{merge_search, MergeSettings};

/// The fields of a search answer that a `similar` answer does not have.
const SEARCH_ONLY: [&str; 4] = ["query", "semanticHitCount", "facetDistribution", "facetStats"];

/// Merge node answers (each a `similar` or search answer of the same hits' shape) to `client`
/// (the client's `similar` request as a JSON body). `id` is echoed as the node holding the
/// reference document echoed it. Hits are ordered rule by rule and by primary key on ties,
/// `estimatedTotalHits` is summed, `processingTimeMs` is the slowest node's, `offset` and
/// `limit` are the client's, and scores show only when asked.
pub fn merge_similar(
    client: &Value,
    id: &Value,
    answers: &[Value],
    settings: &MergeSettings,
) -> Value {
    let merged = merge_search(client, answers, settings);
    let mut out = Map::new();
    if let Value::Object(map) = merged {
        for (key, value) in map {
            if !SEARCH_ONLY.contains(&key.as_str()) {
                out.insert(key, value);
            }
        }
    }
    out.insert("id".into(), id.clone());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings() -> MergeSettings {
        MergeSettings {
            max_total_hits: 1000,
            max_values_per_facet: 100,
            sort_facet_values_by: vec![("*".into(), "alpha".into())],
            primary_key: "id".into(),
            distinct_attribute: None,
        }
    }

    fn hit(id: u64, similarity: f64) -> Value {
        json!({"id": id, "_rankingScore": similarity,
               "_rankingScoreDetails": {"vectorSort": {"order": 0, "similarity": similarity}},
               "_miroir_shard": {"s1": null}})
    }

    #[test]
    fn similar_answers_merge_by_similarity_in_the_similar_shape() {
        let owner = json!({"hits": [hit(3, 0.9), hit(5, 0.4)], "id": "7", "offset": 0,
                           "limit": 3, "estimatedTotalHits": 2, "processingTimeMs": 2});
        let other = json!({"hits": [hit(2, 0.95), hit(1, 0.4)], "query": "", "offset": 0,
                           "limit": 3, "estimatedTotalHits": 5, "processingTimeMs": 9,
                           "semanticHitCount": 2});
        let client = json!({"id": 7, "embedder": "e", "offset": 1, "limit": 2,
                            "showRankingScore": true});
        let merged = merge_similar(&client, &json!("7"), &[owner, other], &settings());
        assert_eq!(
            merged,
            json!({"hits": [{"id": 3, "_rankingScore": 0.9}, {"id": 1, "_rankingScore": 0.4}],
                   "id": "7", "offset": 1, "limit": 2, "estimatedTotalHits": 7,
                   "processingTimeMs": 9})
        );
    }

    #[test]
    fn scores_and_details_only_when_asked() {
        let answer = json!({"hits": [hit(3, 0.9)], "estimatedTotalHits": 1});
        let plain = merge_similar(
            &json!({"id": 1}),
            &json!("1"),
            std::slice::from_ref(&answer),
            &settings(),
        );
        assert_eq!(plain["hits"], json!([{"id": 3}]));
        let details = merge_similar(
            &json!({"id": 1, "showRankingScoreDetails": true}),
            &json!("1"),
            &[answer],
            &settings(),
        );
        assert_eq!(
            details["hits"],
            json!([{"id": 3, "_rankingScoreDetails":
                    {"vectorSort": {"order": 0, "similarity": 0.9}}}])
        );
        assert_eq!((details["offset"].clone(), details["limit"].clone()), (json!(0), json!(20)));
    }
}
