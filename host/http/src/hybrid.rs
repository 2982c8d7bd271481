//! Hybrid searches decided once for the whole index.
//!
//! One node runs a hybrid search keyword first and skips the semantic half when its keyword
//! hits are good enough ([`miroir_cluster::merge::keyword_good_enough`]). A node of a covering
//! set holds only part of those hits and would decide from its part (typically: "not enough
//! hits to fill the page, run the semantic search too"), so Miroir first scatters the keyword
//! half (`semanticRatio: 0`), merges it and decides like one node. When the keyword hits are
//! good enough, their merge is the answer; otherwise the whole hybrid search is scattered, and
//! every node then runs its semantic half too (a node's keyword page is never better than the
//! merged one, so no node skips what the whole index needs).

use axum::http::HeaderMap;
use miroir_cluster::merge::{keyword_first_ratio, keyword_good_enough, merge_search};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::search::{scatter, Scatter};
use crate::AppState;

/// When `request` is a hybrid search whose keyword hits over the whole index are good enough,
/// the scatter of its keyword half and the merged answer one node gives; `None` when the whole
/// hybrid search must run (or `request` is no such search). A keyword half a node refuses is
/// `None` too: the whole search then reports the node's error for the request as sent.
pub(crate) async fn keyword_answer(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    headers: &HeaderMap,
    request: &Value,
) -> HttpResult<Option<(Scatter, Value)>> {
    let Some(ratio) = keyword_first_ratio(request) else { return Ok(None) };
    if every_group_holds_whole(state, uid).await? {
        // The node asked holds every document and decides as one node does.
        return Ok(None);
    }
    let mut keyword = request.clone();
    keyword["hybrid"]["semanticRatio"] = json!(0.0);
    let scatter = match scatter(state, caller, uid, headers, "search", &keyword).await {
        Ok(scatter) => scatter,
        Err(HttpError::Forwarded(_)) => return Ok(None),
        Err(error) => return Err(error),
    };
    if scatter.settings.distinct_attribute.is_some() {
        // Applied by each node after its decision: the merged hits cannot show what it saw.
        return Ok(None);
    }
    let mut scored = request.clone();
    scored["showRankingScore"] = json!(true);
    let keyword_hits = merge_search(&scored, &scatter.answers, &scatter.settings);
    if !keyword_good_enough(request, &keyword_hits, ratio) {
        return Ok(None);
    }
    let merged = merge_search(request, &scatter.answers, &scatter.settings);
    Ok(Some((scatter, merged)))
}

/// Whether every replica group has a node holding every shard of `uid`, so that a search is
/// answered by one such node with the client's own request (see `search::scatter_with`).
async fn every_group_holds_whole(state: &AppState, uid: &str) -> HttpResult<bool> {
    let meta = index_for_read(state, uid).await?;
    let assignment = state.assignment(meta.shard_count);
    let shards = meta.shard_count as usize;
    Ok(state
        .topology()
        .groups()
        .iter()
        .all(|g| g.nodes.iter().any(|n| assignment.shards_of(n).len() == shards)))
}
