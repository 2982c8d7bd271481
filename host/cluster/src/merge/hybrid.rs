//! The decision a node makes in a hybrid search, made once for the whole index.
//!
//! A node runs a hybrid search (`q` and a `vector`, `0 < semanticRatio < 1`) keyword first, and
//! skips the semantic half when the keyword hits are good enough: they fill the client's page
//! and every hit on it scores at least [`GOOD_ENOUGH`] once weighted by the keyword share
//! (`1 - semanticRatio`). Each node of a covering set holds part of the keyword hits, so a node
//! would decide from its part; Miroir first merges the keyword hits of every node and decides
//! from them, as one node holding every document does.

use serde_json::{Map, Value};

use super::ClientPage;

/// The weighted keyword score every hit of the page must reach to skip the semantic search.
pub const GOOD_ENOUGH: f64 = 0.45;

/// The `semanticRatio` of a search that may be answered by its keyword hits alone: a `hybrid`
/// search with a query vector, a non-empty `q` and a ratio strictly between 0 and 1 (default
/// 0.5). `None` for every other search (keyword only, semantic only, or no vector to compare),
/// and for one with `rankingScoreThreshold` or `distinct`, which a node applies after deciding,
/// so nodes' keyword answers cannot show what it decided from.
pub fn keyword_first_ratio(request: &Value) -> Option<f32> {
    if ["rankingScoreThreshold", "distinct"]
        .iter()
        .any(|k| request.get(k).is_some_and(|v| !v.is_null()))
    {
        return None;
    }
    let hybrid = request.get("hybrid").filter(|h| h.is_object())?;
    request.get("vector").filter(|v| v.is_array())?;
    request.get("q").and_then(Value::as_str).filter(|q| !q.trim().is_empty())?;
    let ratio = match hybrid.get("semanticRatio") {
        None => 0.5,
        Some(v) => v.as_f64()? as f32,
    };
    (ratio > 0.0 && ratio < 1.0).then_some(ratio)
}

/// Whether the merged keyword answer (asked with `showRankingScore`) is what one node serves
/// for `client`: its keyword hits fill the page and each on it scores at least [`GOOD_ENOUGH`]
/// weighted by `1 - ratio`.
pub fn keyword_good_enough(client: &Value, merged_keyword: &Value, ratio: f32) -> bool {
    let page = ClientPage::from_request(client);
    let total = merged_keyword["totalHits"]
        .as_u64()
        .or_else(|| merged_keyword["estimatedTotalHits"].as_u64())
        .unwrap_or(0);
    let end = page.offset.saturating_add(page.limit) as u64;
    let weight = f64::from(1.0 - ratio);
    let hits = merged_keyword["hits"].as_array().map_or(&[][..], Vec::as_slice);
    total >= end
        && hits.iter().all(|h| {
            h.get("_rankingScore")
                .and_then(Value::as_f64)
                .is_some_and(|s| s * weight >= GOOD_ENOUGH)
        })
}

/// How many of `page` came from the semantic search, told by their ranking score details: a
/// semantic hit is ranked by `vectorSort` alone. `None` when a hit has no details.
pub fn semantic_hits(page: &[&Map<String, Value>]) -> Option<u64> {
    let mut count = 0;
    for hit in page {
        let details = hit.get("_rankingScoreDetails")?.as_object()?;
        if details.contains_key("vectorSort") {
            count += 1;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_true_hybrid_searches_decide_keyword_first() {
        let v = json!([0.1, 0.2]);
        let hybrid = |ratio: Value| json!({"q": "a", "vector": v, "hybrid": {"embedder": "e", "semanticRatio": ratio}});
        assert_eq!(keyword_first_ratio(&hybrid(json!(0.5))), Some(0.5));
        assert_eq!(
            keyword_first_ratio(&json!({"q": "a", "vector": v, "hybrid": {"embedder": "e"}})),
            Some(0.5)
        );
        assert_eq!(keyword_first_ratio(&hybrid(json!(1.0))), None);
        assert_eq!(keyword_first_ratio(&hybrid(json!(0.0))), None);
        assert_eq!(keyword_first_ratio(&json!({"q": " ", "vector": v, "hybrid": {}})), None);
        assert_eq!(keyword_first_ratio(&json!({"q": "a", "hybrid": {"embedder": "e"}})), None);
        assert_eq!(keyword_first_ratio(&json!({"q": "a"})), None);
        let mut limited = hybrid(json!(0.5));
        limited["rankingScoreThreshold"] = json!(0.2);
        assert_eq!(keyword_first_ratio(&limited), None);
    }

    #[test]
    fn the_keyword_page_must_be_full_and_score_well() {
        let hits = |scores: &[f64]| {
            let hits: Vec<Value> = scores.iter().map(|s| json!({"_rankingScore": s})).collect();
            Value::from(hits)
        };
        let client = json!({"q": "a", "offset": 1, "limit": 2});
        let good = json!({"hits": hits(&[0.95, 0.9]), "estimatedTotalHits": 3});
        assert!(keyword_good_enough(&client, &good, 0.5));
        let short = json!({"hits": hits(&[0.95]), "estimatedTotalHits": 2});
        assert!(!keyword_good_enough(&client, &short, 0.5), "the page is not full");
        let weak = json!({"hits": hits(&[0.95, 0.89]), "estimatedTotalHits": 30});
        assert!(!keyword_good_enough(&client, &weak, 0.5), "0.89 x 0.5 < 0.45");
        assert!(keyword_good_enough(&client, &weak, 0.4), "0.89 x 0.6 >= 0.45");
        let paged = json!({"hits": hits(&[0.95]), "totalHits": 4});
        assert!(keyword_good_enough(&json!({"page": 2, "hitsPerPage": 1}), &paged, 0.5));
    }

    #[test]
    fn semantic_hits_are_told_by_their_details() {
        let semantic =
            json!({"_rankingScoreDetails": {"vectorSort": {"order": 0, "similarity": 0.9}}});
        let keyword = json!({"_rankingScoreDetails": {"words": {"order": 0, "score": 1.0}}});
        let bare = json!({"id": 1});
        let page = |hits: &[&Value]| -> Option<u64> {
            let maps: Vec<&Map<String, Value>> =
                hits.iter().filter_map(|h| h.as_object()).collect();
            semantic_hits(&maps)
        };
        assert_eq!(page(&[&semantic, &keyword, &semantic]), Some(2));
        assert_eq!(page(&[]), Some(0));
        assert_eq!(page(&[&semantic, &bare]), None);
    }
}
