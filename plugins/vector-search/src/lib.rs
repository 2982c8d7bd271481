//! Miroir's vector-search plugin: hybrid searches (`hybrid: {embedder, semanticRatio}`), vector
//! searches (`vector`) and `similar` documents over every shard, as one node holding every
//! document answers them. Keyword-only searches are declined at once: the host serves them on
//! its own path.
//!
//! - **Score fusion** (`fusion: score`, the default). A hybrid search mixing a keyword and a
//!   semantic half is decided like one node decides it ([`decision`]): the keyword half is run
//!   over the whole index first (the host's `search`, which never comes back to this plugin), and
//!   when its hits fill the page with good enough scores they are the answer. Otherwise, and for
//!   every other vector search, the plugin takes the search unchanged (`rewrite`): the host sends
//!   it to every shard and merges the answers by `_rankingScore` and its details, exactly.
//! - **Reciprocal rank fusion** (`fusion: rrf`, constant `rrf_k`). A mixed hybrid search is run
//!   as its two halves, each asked for `(offset + limit) × over_fetch_factor` hits, fused by rank
//!   ([`rrf`]); the answer carries `X-Miroir-Over-Fetch: <factor>`. Other vector searches are
//!   merged by score as above.
//! - **`similar`** is taken unchanged: the host asks the owner of the reference document and
//!   searches the other shards with its embedding.
//!
//! Configuration: the `vector_search` section (`over_fetch_factor`, `fusion`, `rrf_k`).

pub mod decision;
pub mod rrf;

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{
    search, search_batch, Hook, HookError, Manifest, Plugin, SearchPlan, SearchRoute,
};

/// The response header saying each half was over-fetched, and by how much.
pub const OVER_FETCH_HEADER: &str = "x-miroir-over-fetch";

/// How the hits of a hybrid search are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fusion {
    /// By `_rankingScore`, as one node ranks them.
    Score,
    /// By reciprocal rank fusion of the two halves.
    Rrf,
}

/// The plugin and its configuration.
pub struct VectorSearch {
    over_fetch_factor: u64,
    fusion: Fusion,
    rrf_k: u32,
}

impl VectorSearch {
    /// The plugin configured by the `vector_search` section (absent keys take their defaults).
    pub fn from_config(config: &Value) -> Result<Self, String> {
        let fusion = match config.get("fusion").and_then(Value::as_str).unwrap_or("score") {
            "score" => Fusion::Score,
            "rrf" => Fusion::Rrf,
            other => return Err(format!("vector_search.fusion: `{other}` is not score or rrf")),
        };
        let over_fetch_factor =
            config.get("over_fetch_factor").and_then(Value::as_u64).unwrap_or(3);
        let rrf_k = config.get("rrf_k").and_then(Value::as_u64).unwrap_or(60);
        Ok(VectorSearch {
            over_fetch_factor: over_fetch_factor.max(1),
            fusion,
            rrf_k: u32::try_from(rrf_k).unwrap_or(u32::MAX).max(1),
        })
    }

    /// The plan of a search (not a `similar`).
    fn plan(&self, index: &str, request: Value) -> SearchPlan {
        if !decision::uses_vectors(&request) {
            return SearchPlan::Decline;
        }
        if self.fusion == Fusion::Rrf {
            if let Some(answer) = self.fused(index, &request) {
                return answer;
            }
        } else if let Some(answer) = keyword_answer(index, &request) {
            return answer;
        }
        SearchPlan::Rewrite(request)
    }

    /// A mixed hybrid search answered by reciprocal rank fusion of its halves; `None` for other
    /// searches, and when a half fails (the whole search then reports the error one node gives).
    fn fused(&self, index: &str, request: &Value) -> Option<SearchPlan> {
        decision::mixed_ratio(request)?;
        let page = decision::Page::of(request);
        let depth = page.end().saturating_mul(self.over_fetch_factor).max(1);
        let keyword = rrf::half(request, 0.0, depth);
        let semantic = rrf::half(request, 1.0, depth);
        let mut answers = search_batch(&[(index, &keyword), (index, &semantic)], None).into_iter();
        let keyword = answers.next()?.ok()?;
        let semantic = answers.next()?.ok()?;
        let body = rrf::fuse(request, &keyword, &semantic, self.rrf_k);
        let headers = vec![(OVER_FETCH_HEADER.to_owned(), self.over_fetch_factor.to_string())];
        Some(SearchPlan::Answer { body, headers })
    }
}

/// When `request` is a hybrid search whose keyword hits over the whole index are good enough,
/// the answer one node gives: those hits. `None` when the whole hybrid search must run, and
/// when the keyword half fails (the whole search then reports the node's error for the request
/// as sent).
fn keyword_answer(index: &str, request: &Value) -> Option<SearchPlan> {
    let ratio = decision::keyword_first_ratio(request)?;
    let mut keyword = request.clone();
    keyword["hybrid"]["semanticRatio"] = json!(0.0);
    keyword["showRankingScore"] = json!(true);
    let mut merged = search(index, &keyword).ok()?;
    if !decision::keyword_good_enough(request, &merged, ratio) {
        return None;
    }
    if request.get("showRankingScore").and_then(Value::as_bool) != Some(true) {
        if let Some(hits) = merged.get_mut("hits").and_then(Value::as_array_mut) {
            for hit in hits.iter_mut().filter_map(Value::as_object_mut) {
                hit.remove("_rankingScore");
            }
        }
    }
    Some(SearchPlan::answer(merged))
}

impl Plugin for VectorSearch {
    fn init(config: Value) -> Result<Self, String> {
        VectorSearch::from_config(&config)
    }

    fn manifest(&self) -> Manifest {
        Manifest::new("vector-search", env!("CARGO_PKG_VERSION")).hook(Hook::PlanSearch)
    }

    fn plan_search(
        &mut self,
        index: &str,
        route: SearchRoute,
        request: Value,
    ) -> Result<SearchPlan, HookError> {
        Ok(match route {
            SearchRoute::Similar => SearchPlan::Rewrite(request),
            SearchRoute::Search => self.plan(index, request),
        })
    }
}

miroir_plugin_sdk::export!(VectorSearch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_takes_the_section_and_its_defaults() {
        let plugin = VectorSearch::from_config(&json!({"enabled": true})).expect("defaults");
        assert_eq!((plugin.over_fetch_factor, plugin.fusion, plugin.rrf_k), (3, Fusion::Score, 60));
        let rrf = json!({"over_fetch_factor": 5, "fusion": "rrf", "rrf_k": 10});
        let plugin = VectorSearch::from_config(&rrf).expect("rrf");
        assert_eq!((plugin.over_fetch_factor, plugin.fusion, plugin.rrf_k), (5, Fusion::Rrf, 10));
        assert!(VectorSearch::from_config(&json!({"fusion": "max"})).is_err());
    }

    #[test]
    fn keyword_searches_are_declined_without_a_host_call() {
        let plugin = VectorSearch::from_config(&json!({})).expect("defaults");
        assert_eq!(plugin.plan("items", json!({"q": "router"})), SearchPlan::Decline);
        let vector = json!({"vector": [0.5], "hybrid": {"embedder": "e", "semanticRatio": 1.0}});
        assert_eq!(plugin.plan("items", vector.clone()), SearchPlan::Rewrite(vector));
    }
}
