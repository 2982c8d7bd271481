//! The decision one node makes in a hybrid search, made once for the whole index.
//!
//! A node runs a hybrid search (`q` and a `vector`, `0 < semanticRatio < 1`) keyword first, and
//! skips the semantic half when the keyword hits are good enough: they fill the client's page and
//! every hit on it scores at least [`GOOD_ENOUGH`] once weighted by the keyword share
//! (`1 - semanticRatio`). Each node of a covering set holds part of the keyword hits, so a node
//! would decide from its part; the plugin merges the keyword hits of every shard first (the
//! host's `search`) and decides from them, as one node holding every document does.

use miroir_plugin_sdk::serde_json::Value;

/// The weighted keyword score every hit of the page must reach to skip the semantic search.
pub const GOOD_ENOUGH: f64 = 0.45;

/// Meilisearch's default page size.
const DEFAULT_LIMIT: u64 = 20;

/// The client's page in offset/limit terms (`page`/`hitsPerPage` converted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
    /// Whether the client used `page`/`hitsPerPage`.
    pub paged: bool,
    pub page: u64,
    pub per_page: u64,
}

impl Page {
    pub fn of(request: &Value) -> Page {
        let number = |key: &str| request.get(key).and_then(Value::as_u64);
        let paged = request.get("page").is_some() || request.get("hitsPerPage").is_some();
        if paged {
            let per_page = number("hitsPerPage").unwrap_or(DEFAULT_LIMIT);
            let page = number("page").unwrap_or(1);
            let offset = page.saturating_sub(1).saturating_mul(per_page);
            let limit = if page == 0 { 0 } else { per_page };
            Page { offset, limit, paged, page, per_page }
        } else {
            let limit = number("limit").unwrap_or(DEFAULT_LIMIT);
            let offset = number("offset").unwrap_or(0);
            Page { offset, limit, paged, page: 0, per_page: limit }
        }
    }

    /// How deep the page reaches: `offset + limit`.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.limit)
    }
}

/// Whether `request` uses vectors: a `vector` or a `hybrid` that is not `null`.
pub fn uses_vectors(request: &Value) -> bool {
    ["vector", "hybrid"].iter().any(|k| request.get(k).is_some_and(|v| !v.is_null()))
}

/// The `semanticRatio` of a hybrid search that mixes a keyword and a semantic half: a `hybrid`
/// object, a non-empty `q` and a ratio strictly between 0 and 1 (default 0.5).
pub fn mixed_ratio(request: &Value) -> Option<f32> {
    let hybrid = request.get("hybrid").filter(|h| h.is_object())?;
    request.get("q").and_then(Value::as_str).filter(|q| !q.trim().is_empty())?;
    let ratio = match hybrid.get("semanticRatio") {
        None => 0.5,
        Some(v) => v.as_f64()? as f32,
    };
    (ratio > 0.0 && ratio < 1.0).then_some(ratio)
}

/// The `semanticRatio` of a search that may be answered by its keyword hits alone: a mixed
/// hybrid search ([`mixed_ratio`]) with a query vector. `None` for every other search, and for
/// one with `rankingScoreThreshold` or `distinct`, which a node applies after deciding, so the
/// keyword answers cannot show what it decided from.
pub fn keyword_first_ratio(request: &Value) -> Option<f32> {
    if ["rankingScoreThreshold", "distinct"]
        .iter()
        .any(|k| request.get(k).is_some_and(|v| !v.is_null()))
    {
        return None;
    }
    request.get("vector").filter(|v| v.is_array())?;
    mixed_ratio(request)
}

/// Whether the merged keyword answer (asked with `showRankingScore`) is what one node serves
/// for `client`: its keyword hits fill the page and each on it scores at least [`GOOD_ENOUGH`]
/// weighted by `1 - ratio`.
pub fn keyword_good_enough(client: &Value, merged_keyword: &Value, ratio: f32) -> bool {
    let page = Page::of(client);
    let total = merged_keyword["totalHits"]
        .as_u64()
        .or_else(|| merged_keyword["estimatedTotalHits"].as_u64())
        .unwrap_or(0);
    let weight = f64::from(1.0 - ratio);
    let hits = merged_keyword["hits"].as_array().map_or(&[][..], Vec::as_slice);
    total >= page.end()
        && hits.iter().all(|h| {
            h.get("_rankingScore")
                .and_then(Value::as_f64)
                .is_some_and(|s| s * weight >= GOOD_ENOUGH)
        })
}

#[cfg(test)]
mod tests {
    use miroir_plugin_sdk::serde_json::json;

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
    fn vector_searches_are_told_by_their_parameters() {
        assert!(uses_vectors(&json!({"vector": [1.0]})));
        assert!(uses_vectors(&json!({"q": "a", "hybrid": {"embedder": "e"}})));
        assert!(!uses_vectors(&json!({"q": "a", "vector": null, "hybrid": null})));
        assert!(!uses_vectors(&json!({"q": "a"})));
    }
}
