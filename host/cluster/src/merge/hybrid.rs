//! Hybrid answers: telling the semantic hits of a merged page.
//!
//! Deciding a hybrid search like one node (keyword first, the semantic half only when the
//! keyword hits are not good enough) belongs to the vector-search plugin
//! (`plugins/vector-search`), which runs it before the scatter.

use serde_json::{Map, Value};

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
