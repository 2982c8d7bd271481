//! Reciprocal rank fusion of the keyword and the semantic halves of a hybrid search
//! (`vector_search.fusion: rrf`).
//!
//! Each half is run over the whole index (the host's `search`, both at once), each asked for
//! `(offset + limit) × over_fetch_factor` hits from the first, so that a document ranked low by
//! one half and high by the other still reaches the fused page. A document's fused score is
//! `Σ 1 / (k + rank)` over the halves that returned it (rank from 1); ties keep the keyword
//! half's order. Documents are told apart by their retrieved fields.

use std::collections::HashMap;

use miroir_plugin_sdk::serde_json::{json, Map, Value};

use crate::decision::Page;

/// Fields a hit carries that depend on the half that returned it, not on the document.
const PER_HALF: [&str; 5] =
    ["_rankingScore", "_rankingScoreDetails", "_formatted", "_matchesPosition", "_semanticScore"];

/// The request of one half: the client's, with `semanticRatio` set to `ratio` and the page
/// replaced by the first `depth` hits (scores on, to be shown or taken out after the fusion).
pub fn half(request: &Value, ratio: f64, depth: u64) -> Value {
    let mut half = request.clone();
    if let Some(object) = half.as_object_mut() {
        for key in ["page", "hitsPerPage"] {
            object.remove(key);
        }
        object.insert("offset".into(), json!(0));
        object.insert("limit".into(), json!(depth));
    }
    half["hybrid"]["semanticRatio"] = json!(ratio);
    half
}

/// What identifies a hit's document across the halves.
fn identity(hit: &Value) -> String {
    match hit.as_object() {
        Some(object) => {
            let mut fields: Vec<(&String, &Value)> =
                object.iter().filter(|(k, _)| !PER_HALF.contains(&k.as_str())).collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            json!(fields).to_string()
        }
        None => hit.to_string(),
    }
}

/// Fuses the `keyword` and `semantic` answers (each to a [`half`] request) into the client's
/// answer to `client`, by reciprocal rank fusion with constant `k`.
pub fn fuse(client: &Value, keyword: &Value, semantic: &Value, k: u32) -> Value {
    struct Fused<'a> {
        hit: &'a Value,
        score: f64,
        first: usize,
        keyword: bool,
    }
    let mut fused: Vec<Fused<'_>> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for (half, answer) in [keyword, semantic].into_iter().enumerate() {
        let hits = answer["hits"].as_array().map_or(&[][..], Vec::as_slice);
        for (rank, hit) in hits.iter().enumerate() {
            let contribution = 1.0 / (f64::from(k) + rank as f64 + 1.0);
            let key = identity(hit);
            match position.get(&key) {
                Some(&at) => fused[at].score += contribution,
                None => {
                    position.insert(key, fused.len());
                    let first = fused.len();
                    fused.push(Fused { hit, score: contribution, first, keyword: half == 0 });
                }
            }
        }
    }
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.first.cmp(&b.first)));

    let page = Page::of(client);
    let want_score = client.get("showRankingScore").and_then(Value::as_bool) == Some(true);
    let want_details = client.get("showRankingScoreDetails").and_then(Value::as_bool) == Some(true);
    let start = usize::try_from(page.offset).unwrap_or(usize::MAX).min(fused.len());
    let end = usize::try_from(page.end()).unwrap_or(usize::MAX).min(fused.len());
    let shown = &fused[start..end];
    let hits: Vec<Value> = shown
        .iter()
        .map(|f| {
            let mut hit = f.hit.clone();
            if let Some(object) = hit.as_object_mut() {
                if !want_score {
                    object.remove("_rankingScore");
                }
                if !want_details {
                    object.remove("_rankingScoreDetails");
                }
            }
            hit
        })
        .collect();
    let semantic_hits = shown.iter().filter(|f| !f.keyword).count();

    let number = |answer: &Value, key: &str| answer[key].as_u64().unwrap_or(0);
    let total_key = if page.paged { "totalHits" } else { "estimatedTotalHits" };
    let total = number(keyword, total_key).max(number(semantic, total_key));
    let mut out = Map::new();
    out.insert("hits".into(), Value::Array(hits));
    out.insert("query".into(), client.get("q").cloned().unwrap_or_else(|| json!("")));
    let took = number(keyword, "processingTimeMs").max(number(semantic, "processingTimeMs"));
    out.insert("processingTimeMs".into(), json!(took));
    if page.paged {
        out.insert("hitsPerPage".into(), json!(page.per_page));
        out.insert("page".into(), json!(page.page));
        let pages = if page.per_page == 0 { 0 } else { total.div_ceil(page.per_page) };
        out.insert("totalPages".into(), json!(pages));
        out.insert("totalHits".into(), json!(total));
    } else {
        out.insert("limit".into(), json!(page.limit));
        out.insert("offset".into(), json!(page.offset));
        out.insert("estimatedTotalHits".into(), json!(total));
    }
    for key in ["facetDistribution", "facetStats"] {
        if let Some(value) = keyword.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    out.insert("semanticHitCount".into(), json!(semantic_hits));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64, score: f64) -> Value {
        json!({"id": id, "_rankingScore": score})
    }

    #[test]
    fn halves_ask_for_the_over_fetched_depth_from_the_first_hit() {
        let client = json!({"q": "a", "page": 2, "hitsPerPage": 5,
                            "hybrid": {"embedder": "e", "semanticRatio": 0.5}});
        let keyword = half(&client, 0.0, 30);
        assert_eq!(keyword["offset"], 0);
        assert_eq!(keyword["limit"], 30);
        assert!(keyword.get("page").is_none() && keyword.get("hitsPerPage").is_none());
        assert_eq!(keyword["hybrid"], json!({"embedder": "e", "semanticRatio": 0.0}));
        assert_eq!(half(&client, 1.0, 30)["hybrid"]["semanticRatio"], 1.0);
    }

    #[test]
    fn documents_both_halves_rank_come_first() {
        let keyword = json!({"hits": [hit(1, 0.9), hit(2, 0.8), hit(3, 0.7)],
                             "estimatedTotalHits": 3, "processingTimeMs": 2});
        let semantic = json!({"hits": [hit(4, 0.99), hit(3, 0.95), hit(2, 0.5)],
                              "estimatedTotalHits": 10, "processingTimeMs": 5});
        let client = json!({"q": "a", "limit": 3});
        let fused = fuse(&client, &keyword, &semantic, 60);
        // 2: 1/62 + 1/63, 3: 1/63 + 1/62 (tie: keyword order), then 1: 1/61, 4: 1/61.
        assert_eq!(fused["hits"], json!([{"id": 2}, {"id": 3}, {"id": 1}]));
        assert_eq!(fused["estimatedTotalHits"], 10);
        assert_eq!(fused["processingTimeMs"], 5);
        assert_eq!(fused["semanticHitCount"], 0);
        let next = fuse(
            &json!({"q": "a", "offset": 3, "showRankingScore": true}),
            &keyword,
            &semantic,
            60,
        );
        assert_eq!(next["hits"], json!([{"id": 4, "_rankingScore": 0.99}]));
        assert_eq!(next["semanticHitCount"], 1);
    }
}
