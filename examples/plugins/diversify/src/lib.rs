//! An example Miroir plugin using the search hooks: every search answers at most `max_per_value`
//! hits per value of `field` (e.g. one product per brand), best hits first.
//!
//! - `plan-search` over-fetches: each shard is asked for `(offset + limit) × over_fetch` hits, so
//!   that enough different values remain once the repeated ones are dropped, and `field` is
//!   retrieved even when the client restricts `attributesToRetrieve`.
//! - `merge-search` gets each shard's own answer, orders all their hits by `_rankingScore`
//!   (ties: shard, then the shard's order), keeps at most `max_per_value` per value of `field`,
//!   and answers the client's `offset`/`limit` in Meilisearch's shape. Facet distributions are not
//!   merged by this example.
//!
//! Configuration (`plugins.custom[].config`): `field` (required), `max_per_value` (default 1),
//! `over_fetch` (default 3). It counts the hits it dropped in the metric `dropped_hits`
//! (`miroir_plugin_<name>_dropped_hits` on `/metrics`).

use std::collections::HashMap;

use miroir_plugin_sdk::serde_json::{json, Value};
use miroir_plugin_sdk::{
    metrics, Hook, HookError, Manifest, Plugin, SearchPlan, SearchRoute, ShardResponse,
};

struct Diversify {
    field: String,
    max_per_value: usize,
    over_fetch: u64,
}

fn number(request: &Value, key: &str, default: u64) -> u64 {
    request.get(key).and_then(Value::as_u64).unwrap_or(default)
}

impl Plugin for Diversify {
    fn init(config: Value) -> Result<Self, String> {
        let field = config
            .get("field")
            .and_then(Value::as_str)
            .ok_or("config.field (the attribute to diversify on) is required")?
            .to_owned();
        let max_per_value = number(&config, "max_per_value", 1).max(1) as usize;
        let over_fetch = number(&config, "over_fetch", 3).max(1);
        Ok(Diversify { field, max_per_value, over_fetch })
    }

    fn manifest(&self) -> Manifest {
        Manifest::new("diversify", env!("CARGO_PKG_VERSION"))
            .hook(Hook::PlanSearch)
            .hook(Hook::MergeSearch)
    }

    fn plan_search(
        &mut self,
        _index: &str,
        route: SearchRoute,
        mut request: Value,
    ) -> Result<SearchPlan, HookError> {
        if route != SearchRoute::Search {
            return Ok(SearchPlan::Decline);
        }
        let depth = number(&request, "offset", 0) + number(&request, "limit", 20);
        request["offset"] = json!(0);
        request["limit"] = json!(depth * self.over_fetch);
        if let Some(attributes) =
            request.get_mut("attributesToRetrieve").and_then(Value::as_array_mut)
        {
            if !attributes.iter().any(|a| a == "*" || a == self.field.as_str()) {
                attributes.push(json!(self.field));
            }
        }
        Ok(SearchPlan::Rewrite(request))
    }

    fn merge_search(
        &mut self,
        _index: &str,
        request: Value,
        responses: Vec<ShardResponse>,
    ) -> Result<Value, HookError> {
        let mut hits = Vec::new();
        let (mut total, mut slowest) = (0, 0);
        for response in responses {
            if !(200..300).contains(&response.status) {
                // A shard no replica answered: the gateway's header names it; merge the rest.
                continue;
            }
            total += number(&response.body, "estimatedTotalHits", 0);
            slowest = slowest.max(number(&response.body, "processingTimeMs", 0));
            let shard_hits = response.body["hits"].as_array().cloned().unwrap_or_default();
            for (position, hit) in shard_hits.into_iter().enumerate() {
                hits.push((response.shard, position, hit));
            }
        }
        let score = |hit: &Value| hit["_rankingScore"].as_f64().unwrap_or(0.0);
        hits.sort_by(|a, b| {
            score(&b.2).total_cmp(&score(&a.2)).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1))
        });
        let mut seen: HashMap<String, usize> = HashMap::new();
        let before = hits.len();
        let mut kept: Vec<Value> = hits
            .into_iter()
            .map(|(_, _, hit)| hit)
            .filter(|hit| {
                let count = seen.entry(hit[self.field.as_str()].to_string()).or_default();
                *count += 1;
                *count <= self.max_per_value
            })
            .collect();
        metrics::counter_add("dropped_hits", (before - kept.len()) as u64, &[]);
        let offset = number(&request, "offset", 0) as usize;
        let limit = number(&request, "limit", 20) as usize;
        let show_score = request.get("showRankingScore") == Some(&json!(true));
        let page: Vec<Value> = kept
            .drain(..)
            .skip(offset)
            .take(limit)
            .map(|mut hit| {
                if let Some(object) = hit.as_object_mut() {
                    if !show_score {
                        object.remove("_rankingScore");
                    }
                    object.remove("_rankingScoreDetails");
                }
                hit
            })
            .collect();
        Ok(json!({
            "hits": page,
            "query": request.get("q").cloned().unwrap_or(json!("")),
            "processingTimeMs": slowest,
            "limit": limit,
            "offset": offset,
            "estimatedTotalHits": total,
        }))
    }
}

miroir_plugin_sdk::export!(Diversify);
