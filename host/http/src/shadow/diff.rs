//! Comparing a read's answer with a shadow target's answer to the same request: which hits
//! only one side has, how the common hits' order agrees (Kendall tau), the totals, and errors.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use miroir_types::ReadExchange;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Both sides of one comparison.
pub(crate) struct Sides<'a> {
    pub index: Option<&'a str>,
    pub primary_key: Option<&'a str>,
    pub exchange: &'a ReadExchange,
    /// The client's answer, as sent.
    pub primary: &'a [u8],
    pub shadow_status: u16,
    /// The target's answer, as received.
    pub shadow: &'a [u8],
    pub shadow_error: Option<String>,
    pub shadow_took: Duration,
}

/// One comparison: what the aggregate needs, and the record the ring buffer keeps.
pub(crate) struct Compared {
    pub identical: bool,
    pub error_side: Option<&'static str>,
    pub tau: Option<f64>,
    pub latency_delta_ms: f64,
    pub json: Value,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `body` without the fields that differ on every answer (`processingTimeMs`).
fn stable(body: &Value) -> Value {
    let mut body = body.clone();
    if let Value::Object(fields) = &mut body {
        fields.remove("processingTimeMs");
    }
    body
}

/// Compares the client's answer with the target's.
pub(crate) fn compared(sides: Sides<'_>) -> Compared {
    let ok = |status: u16| (200..300).contains(&status);
    let primary_status = sides.exchange.status;
    let error_side = match (ok(primary_status), ok(sides.shadow_status)) {
        (true, false) => Some("shadow"),
        (false, true) => Some("primary"),
        _ => None,
    };
    let primary = read(sides.primary, sides.primary_key);
    let shadow = read(sides.shadow, sides.primary_key);
    let (a, b) = (primary.ranked, shadow.ranked);
    let (only_primary, only_shadow, tau, common) = match (&a, &b) {
        (Some(a), Some(b)) => {
            let only_primary = only_in(a, b);
            let common = a.len() - only_primary.len();
            (only_primary, only_in(b, a), kendall_tau(a, b), Some(common))
        }
        _ => (Vec::new(), Vec::new(), None, None),
    };
    let (primary_total, shadow_total) = (primary.total, shadow.total);
    let identical = primary_status == sides.shadow_status
        && match (&a, &b) {
            (Some(a), Some(b)) => a == b && primary_total == shadow_total,
            // Answers that rank nothing (a document, stats) are compared whole.
            _ => stable(&parse(sides.primary)) == stable(&parse(sides.shadow)),
        };
    let total_delta = match (primary_total, shadow_total) {
        (Some(p), Some(s)) => Some(s as i64 - p as i64),
        _ => None,
    };
    let latency_delta_ms = ms(sides.shadow_took) - ms(sides.exchange.total);
    let json = json!({
        "id": 0,
        "target": "",
        "timestampMs": sides.exchange.started_at_ms,
        "index": sides.index,
        "method": sides.exchange.method,
        "path": sides.exchange.path,
        "query": sides.exchange.query,
        "identical": identical,
        "errorSide": error_side,
        "primary": { "status": primary_status, "tookMs": ms(sides.exchange.total), "total": primary_total },
        "shadow": {
            "status": sides.shadow_status,
            "tookMs": ms(sides.shadow_took),
            "total": shadow_total,
            "error": sides.shadow_error,
        },
        "onlyPrimary": only_primary,
        "onlyShadow": only_shadow,
        "common": common,
        "kendallTau": tau,
        "totalDelta": total_delta,
        "latencyDeltaMs": latency_delta_ms,
    });
    Compared { identical, error_side, tau, latency_delta_ms, json }
}

/// A body as JSON (`null` when it is not).
fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// What a comparison reads of one answer.
#[derive(Debug, PartialEq)]
pub(crate) struct Read {
    /// See [`ranked`].
    pub ranked: Option<Vec<String>>,
    /// See [`total`].
    pub total: Option<u64>,
}

/// [`ranked`] and [`total`] of `body`: read without building the hits' documents when the
/// body has the shape of a search, facet search or documents answer (most comparisons), from
/// the whole JSON otherwise.
pub(crate) fn read(body: &[u8], primary_key: Option<&str>) -> Read {
    lite::read(body, primary_key).unwrap_or_else(|| {
        let body = parse(body);
        Read { ranked: ranked(&body, primary_key), total: total(&body) }
    })
}

/// The shapes [`read`] reads without a value tree: members of a hit are kept as raw JSON text.
mod lite {
    use super::*;

    type Fields<'a> = HashMap<Cow<'a, str>, &'a RawValue>;

    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        hits: Option<Vec<Fields<'a>>>,
        #[serde(borrow, default, rename = "facetHits")]
        facet_hits: Option<Vec<Fields<'a>>>,
        #[serde(borrow, default)]
        results: Option<Vec<Fields<'a>>>,
        #[serde(default, rename = "estimatedTotalHits")]
        estimated_total_hits: Option<u64>,
        #[serde(default, rename = "totalHits")]
        total_hits: Option<u64>,
        #[serde(default)]
        total: Option<u64>,
    }

    /// `None` when the body has another shape (the caller reads it whole).
    pub(super) fn read(body: &[u8], primary_key: Option<&str>) -> Option<Read> {
        let body: Body<'_> = serde_json::from_slice(body).ok()?;
        let total = body
            .estimated_total_hits
            .or(body.total_hits)
            .or(body.total)
            .or_else(|| body.results.as_deref().and_then(results_total))
            .or_else(|| body.facet_hits.as_ref().map(|h| h.len() as u64));
        let ranked = if let Some(hits) = &body.hits {
            hits.iter().map(|h| id_of(h, primary_key)).collect::<Option<_>>()?
        } else if let Some(facet_hits) = &body.facet_hits {
            facet_hits
                .iter()
                .map(|h| Some(h.get("value").map_or(Value::Null, |v| as_value(v)).to_string()))
                .collect::<Option<_>>()?
        } else {
            let results = body.results.as_ref()?;
            if results.iter().all(|r| r.contains_key("hits")) {
                // Multi-search: each query's hits, told apart by the query's position.
                let mut ranked = Vec::new();
                for (i, result) in results.iter().enumerate() {
                    let hits: Vec<Fields<'_>> = serde_json::from_str(result["hits"].get()).ok()?;
                    for hit in &hits {
                        ranked.push(format!("{i}:{}", id_of(hit, primary_key)?));
                    }
                }
                ranked
            } else {
                results.iter().map(|r| id_of(r, primary_key)).collect::<Option<_>>()?
            }
        };
        Some(Read { ranked: Some(ranked), total })
    }

    /// The sum of the results' totals, as [`super::total`] counts them.
    fn results_total(results: &[Fields<'_>]) -> Option<u64> {
        results
            .iter()
            .map(|r| {
                ["estimatedTotalHits", "totalHits"]
                    .iter()
                    .find_map(|k| r.get(*k))
                    .and_then(|v| as_value(v).as_u64())
            })
            .sum()
    }

    fn as_value(raw: &RawValue) -> Value {
        serde_json::from_str(raw.get()).unwrap_or(Value::Null)
    }

    /// As [`super::ranked`] names a hit; `None` for a hit without its key (read whole).
    fn id_of(hit: &Fields<'_>, primary_key: Option<&str>) -> Option<String> {
        let raw = primary_key.and_then(|k| hit.get(k)).or_else(|| hit.get("id"))?;
        Some(match as_value(raw) {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }
}

/// What a body ranks: the ids of its hits (search, similar, multi-search queries prefixed by
/// their position, documents lists), the values of a facet search, or nothing for a single
/// document (compared whole).
pub(crate) fn ranked(body: &Value, primary_key: Option<&str>) -> Option<Vec<String>> {
    let id_of = |hit: &Value| -> String {
        let key = primary_key.and_then(|k| hit.get(k)).or_else(|| hit.get("id"));
        match key {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => hit.to_string(),
        }
    };
    if let Some(hits) = body.get("hits").and_then(Value::as_array) {
        return Some(hits.iter().map(id_of).collect());
    }
    if let Some(hits) = body.get("facetHits").and_then(Value::as_array) {
        return Some(hits.iter().map(|h| h["value"].to_string()).collect());
    }
    if let Some(results) = body.get("results").and_then(Value::as_array) {
        if results.iter().all(|r| r.get("hits").is_some()) {
            // Multi-search: each query's hits, told apart by the query's position.
            return Some(
                results
                    .iter()
                    .enumerate()
                    .flat_map(|(i, r)| {
                        r["hits"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(move |h| format!("{i}:{}", id_of(h)))
                    })
                    .collect(),
            );
        }
        return Some(results.iter().map(id_of).collect());
    }
    None
}

/// The total a body announces (`estimatedTotalHits`, `totalHits`, `total`), or the facet hits'
/// count.
pub(crate) fn total(body: &Value) -> Option<u64> {
    ["estimatedTotalHits", "totalHits", "total"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .or_else(|| {
            let results = body.get("results").and_then(Value::as_array)?;
            results
                .iter()
                .map(|r| {
                    r.get("estimatedTotalHits")
                        .or_else(|| r.get("totalHits"))
                        .and_then(Value::as_u64)
                })
                .sum()
        })
        .or_else(|| body.get("facetHits").and_then(Value::as_array).map(|h| h.len() as u64))
}

/// Kendall tau of the items common to `a` and `b` (each ranked by its position in `a` and in
/// `b`): 1 when they agree on every pair, -1 when on none. `None` with fewer than two common
/// items.
pub(crate) fn kendall_tau(a: &[String], b: &[String]) -> Option<f64> {
    let position_in_b: std::collections::HashMap<&str, usize> =
        b.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let common: Vec<usize> =
        a.iter().filter_map(|id| position_in_b.get(id.as_str()).copied()).collect();
    let n = common.len();
    if n < 2 {
        return None;
    }
    let (mut concordant, mut discordant) = (0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            if common[i] < common[j] {
                concordant += 1;
            } else {
                discordant += 1;
            }
        }
    }
    let pairs = (n * (n - 1) / 2) as f64;
    Some((concordant - discordant) as f64 / pairs)
}

/// The items of `a` that `b` lacks, in `a`'s order.
pub(crate) fn only_in(a: &[String], b: &[String]) -> Vec<String> {
    let b: std::collections::HashSet<&str> = b.iter().map(String::as_str).collect();
    a.iter().filter(|id| !b.contains(id.as_str())).cloned().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ids(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn tau_is_one_for_the_same_order_and_minus_one_reversed() {
        let a = ids(&["1", "2", "3", "4"]);
        assert_eq!(kendall_tau(&a, &a), Some(1.0));
        assert_eq!(kendall_tau(&a, &ids(&["4", "3", "2", "1"])), Some(-1.0));
        // One swap of neighbours among four: 5 pairs agree, 1 does not.
        let tau = kendall_tau(&a, &ids(&["2", "1", "3", "4"])).expect("tau");
        assert!((tau - 4.0 / 6.0).abs() < 1e-9, "{tau}");
        // Only the common items count.
        assert_eq!(kendall_tau(&a, &ids(&["9", "1", "8", "2"])), Some(1.0));
        assert_eq!(kendall_tau(&a, &ids(&["1"])), None);
    }

    #[test]
    fn ranked_lists_come_from_hits_results_or_facets() {
        let search =
            json!({"hits": [{"sku": "a"}, {"sku": "b", "id": 9}], "estimatedTotalHits": 7});
        assert_eq!(ranked(&search, Some("sku")), Some(ids(&["a", "b"])));
        assert_eq!(total(&search), Some(7));
        let multi = json!({"results": [{"hits": [{"id": 1}], "estimatedTotalHits": 1}, {"hits": [{"id": 1}], "estimatedTotalHits": 2}]});
        assert_eq!(ranked(&multi, None), Some(ids(&["0:1", "1:1"])));
        assert_eq!(total(&multi), Some(3));
        let facets = json!({"facetHits": [{"value": "red", "count": 2}]});
        assert_eq!(ranked(&facets, None), Some(ids(&["\"red\""])));
        assert_eq!(ranked(&json!({"id": 1, "title": "x"}), None), None);
        assert_eq!(only_in(&ids(&["1", "2", "3"]), &ids(&["2"])), ids(&["1", "3"]));
    }

    #[test]
    fn reading_the_bytes_agrees_with_reading_the_whole_json() {
        let bodies = [
            json!({"hits": [{"sku": "a", "title": {"deep": [1, 2]}}, {"sku": 7}], "estimatedTotalHits": 7}),
            json!({"hits": [{"id": "x"}, {"other": 1}], "totalHits": 3}),
            json!({"hits": [], "estimatedTotalHits": 0, "facetDistribution": {"brand": {"a": 1}}}),
            json!({"facetHits": [{"value": "red", "count": 2}, {"count": 1}], "facetQuery": null}),
            json!({"results": [{"hits": [{"id": 1}], "estimatedTotalHits": 1}, {"hits": [{"id": "é\"q"}], "totalHits": 2}]}),
            json!({"results": [{"hits": [{"id": 1}]}, {"hits": null}]}),
            json!({"results": [{"id": 1, "title": "a"}, {"id": 2}], "total": 2, "offset": 0}),
            json!({"results": [{"title": "no id"}], "total": 1}),
            json!({"results": []}),
            json!({"hits": null, "facetHits": [{"value": 3, "count": 1}]}),
            json!({"id": 1, "title": "x"}),
            json!({"hits": "not a list", "estimatedTotalHits": -1}),
            json!([1, 2]),
            Value::Null,
        ];
        for body in &bodies {
            let bytes = serde_json::to_vec(body).expect("serializes");
            for key in [Some("sku"), None] {
                let whole = Read { ranked: ranked(body, key), total: total(body) };
                assert_eq!(read(&bytes, key), whole, "{body} with key {key:?}");
            }
        }
        assert_eq!(read(b"not json", None), Read { ranked: None, total: None });
        let fast = lite::read(&serde_json::to_vec(&bodies[0]).expect("json"), Some("sku"));
        assert!(fast.is_some(), "a search answer is read without its documents");
    }
}
