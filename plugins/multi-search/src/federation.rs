//! Federated multi-search: one hit list merged from every query by weighted ranking score.

use std::cmp::Ordering;

use miroir_plugin_sdk::serde_json::{json, Map, Value};

use crate::{Query, QueryError};

/// `federation: {limit, offset}`.
pub(crate) struct Options {
    limit: usize,
    offset: usize,
}

fn non_negative(
    options: &Map<String, Value>,
    key: &str,
    default: usize,
) -> Result<usize, QueryError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_u64().map(|v| v as usize).ok_or_else(|| {
            QueryError::new(
                400,
                &format!("invalid_multi_search_federation_{key}"),
                format!("Invalid value type at `.federation.{key}`: expected a positive integer, but found: {value}"),
            )
        }),
    }
}

impl Options {
    pub(crate) fn parse(options: &Map<String, Value>) -> Result<Self, QueryError> {
        Ok(Options {
            limit: non_negative(options, "limit", 20)?,
            offset: non_negative(options, "offset", 0)?,
        })
    }

    /// The request sent for one query: enough hits from the top of each index to fill the page,
    /// with ranking scores to merge by.
    pub(crate) fn shard_request(&self, query: &Map<String, Value>) -> Value {
        let mut request = query.clone();
        request.insert("limit".into(), json!(self.offset + self.limit));
        request.insert("offset".into(), json!(0));
        request.insert("showRankingScore".into(), json!(true));
        Value::Object(request)
    }
}

struct Candidate {
    score: f64,
    position: usize,
    rank: usize,
    hit: Map<String, Value>,
}

/// Merges `answers` (one per query, in order) into Meilisearch's federated response.
pub(crate) fn merge(
    options: &Options,
    queries: &[Query],
    answers: Vec<Value>,
    took_ms: u64,
) -> Value {
    let mut candidates = Vec::new();
    let mut total: u64 = 0;
    for (query, answer) in queries.iter().zip(answers) {
        total += answer["estimatedTotalHits"]
            .as_u64()
            .or_else(|| answer["totalHits"].as_u64())
            .unwrap_or(0);
        let keep_score = query.body.get("showRankingScore").and_then(Value::as_bool) == Some(true);
        let Value::Object(mut answer) = answer else { continue };
        let Some(Value::Array(hits)) = answer.remove("hits") else { continue };
        for (rank, hit) in hits.into_iter().enumerate() {
            let Value::Object(mut hit) = hit else { continue };
            let score =
                hit.get("_rankingScore").and_then(Value::as_f64).unwrap_or(0.0) * query.weight;
            if !keep_score {
                hit.remove("_rankingScore");
            }
            hit.insert(
                "_federation".into(),
                json!({
                    "indexUid": query.index,
                    "queriesPosition": query.position,
                    "weightedRankingScore": score,
                }),
            );
            candidates.push(Candidate { score, position: query.position, rank, hit });
        }
    }
    // Best score first; equal scores keep the order of the queries, then each index's own order.
    candidates.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(a.position.cmp(&b.position))
            .then(a.rank.cmp(&b.rank))
    });
    let hits: Vec<Value> = candidates
        .into_iter()
        .skip(options.offset)
        .take(options.limit)
        .map(|c| Value::Object(c.hit))
        .collect();
    json!({
        "hits": hits,
        "processingTimeMs": took_ms,
        "limit": options.limit,
        "offset": options.offset,
        "estimatedTotalHits": total,
    })
}
