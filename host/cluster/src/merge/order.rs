//! Ordering hits from different nodes rule by rule, from their `_rankingScoreDetails`.
//!
//! Each rule's detail carries its `order` (position among the ranking rules) and either a
//! `score` (relevance rules, higher first), a `value` (sort rules, in the rule's direction,
//! missing values last), a `distance` (geo sort) or a `similarity` (vector sort). Comparing rule
//! by rule is what makes sorted and geo queries merge correctly, where `_rankingScore` alone
//! would not.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The order two hits take in the merged answer (ties compare `Equal`).
pub fn compare_hits(a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    RankKey::of(a).cmp_rank(&RankKey::of(b))
}

/// What a hit is ordered by, read once from its details so that sorting compares plain values.
#[derive(Debug)]
pub struct RankKey<'a> {
    rules: Vec<RuleKey<'a>>,
    score: Option<f64>,
}

/// One rule's part of the order.
#[derive(Debug)]
enum RuleKey<'a> {
    /// Relevance rules and vector similarity: higher first.
    Higher(f64),
    /// Geo sort: the distance, in the rule's direction, missing last.
    Distance(Option<f64>, bool),
    /// Sort rules: the value, in the rule's direction, missing last.
    Sorted(Option<Cow<'a, Value>>, bool),
}

impl<'a> RankKey<'a> {
    /// Read the hit's `_rankingScoreDetails` (rules sorted by their `order`) and score.
    pub fn of(hit: &'a Map<String, Value>) -> Self {
        let score = hit.get("_rankingScore").and_then(Value::as_f64);
        let Some(Value::Object(details)) = hit.get("_rankingScoreDetails") else {
            return Self { rules: Vec::new(), score };
        };
        let rules = details
            .iter()
            .filter_map(|(name, d)| d.as_object().map(|d| (name.as_str(), d)))
            .map(|(name, d)| rule(name, |key| d.get(key).map(Cow::Borrowed)));
        Self::sorted(rules.collect(), score)
    }

    /// [`RankKey::of`] a hit whose `_rankingScore` and `_rankingScoreDetails` are given as raw
    /// JSON (text a node sent, so valid JSON), reading from each rule only what the order needs.
    pub fn of_raw(score: Option<&RawValue>, details: Option<&RawValue>) -> RankKey<'static> {
        let value = |raw: &RawValue| serde_json::from_str::<Value>(raw.get()).ok();
        let score = score.and_then(value).and_then(|s| s.as_f64());
        let details = details.filter(|d| d.get().starts_with('{')).map_or_else(Vec::new, members);
        let mut rules = Vec::with_capacity(details.len());
        for (n, (name, _)) in details.iter().enumerate() {
            // A name given twice counts once, with its last details, as in a value tree.
            if details[..n].iter().any(|(other, _)| other == name) {
                continue;
            }
            let Some((_, raw)) = details.iter().rev().find(|(other, _)| other == name) else {
                continue;
            };
            if !raw.get().starts_with('{') {
                continue;
            }
            let mut parsed: Vec<(Cow<'_, str>, Value)> = Vec::new();
            for (key, raw) in members(raw).into_iter().rev() {
                let wanted = ["order", "score", "similarity", "distance", "value"];
                if wanted.contains(&key.as_ref()) && !parsed.iter().any(|(k, _)| *k == key) {
                    parsed.push((key, value(raw).unwrap_or(Value::Null)));
                }
            }
            let field =
                |key: &str| parsed.iter().find(|(k, _)| k == key).map(|(_, v)| Cow::Borrowed(v));
            let (order, key) = rule(name, field);
            rules.push((order, owned(key)));
        }
        RankKey::sorted(rules, score)
    }

    fn sorted(mut rules: Vec<(u64, RuleKey<'a>)>, score: Option<f64>) -> Self {
        rules.sort_by_key(|(order, _)| *order);
        Self { rules: rules.into_iter().map(|(_, k)| k).collect(), score }
    }

    /// Rule by rule, then by `_rankingScore`; ties compare `Equal`.
    pub fn cmp_rank(&self, other: &Self) -> Ordering {
        for (a, b) in self.rules.iter().zip(other.rules.iter()) {
            let ord = match (a, b) {
                (RuleKey::Higher(x), RuleKey::Higher(y)) => {
                    y.partial_cmp(x).unwrap_or(Ordering::Equal)
                }
                (RuleKey::Distance(x, desc), RuleKey::Distance(y, _)) => {
                    directed(missing_last(*x, *y), *desc)
                }
                (RuleKey::Sorted(x, desc), RuleKey::Sorted(y, _)) => {
                    match (x.as_deref(), y.as_deref()) {
                        (None, None) => Ordering::Equal,
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (Some(x), Some(y)) => directed(compare_values(x, y), *desc),
                    }
                }
                _ => Ordering::Equal,
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        match (self.score, other.score) {
            (Some(x), Some(y)) => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
            _ => Ordering::Equal,
        }
    }
}

/// One rule's order and key, from its details' fields as `field` gives them.
fn rule<'a>(name: &str, field: impl Fn(&str) -> Option<Cow<'a, Value>>) -> (u64, RuleKey<'a>) {
    let order = field("order").and_then(|o| o.as_u64()).unwrap_or(u64::MAX);
    let num = |key: &str| field(key).and_then(|v| v.as_f64());
    let descending = name.ends_with(":desc");
    let key = if let Some(score) = num("score").or_else(|| num("similarity")) {
        RuleKey::Higher(score)
    } else if field("distance").is_some() {
        RuleKey::Distance(num("distance"), descending)
    } else {
        RuleKey::Sorted(field("value"), descending)
    };
    (order, key)
}

/// A key that borrows nothing.
fn owned(key: RuleKey<'_>) -> RuleKey<'static> {
    match key {
        RuleKey::Higher(score) => RuleKey::Higher(score),
        RuleKey::Distance(distance, descending) => RuleKey::Distance(distance, descending),
        RuleKey::Sorted(value, descending) => {
            RuleKey::Sorted(value.map(|v| Cow::Owned(v.into_owned())), descending)
        }
    }
}

/// A raw JSON object's members, in order (keys unescaped); none when it is not an object.
fn members(raw: &RawValue) -> Vec<(Cow<'_, str>, &RawValue)> {
    serde_json::from_str::<super::raw::RawObject<'_>>(raw.get())
        .map_or_else(|_| Vec::new(), |o| o.0)
}

fn directed(ord: Ordering, descending: bool) -> Ordering {
    if descending {
        ord.reverse()
    } else {
        ord
    }
}

fn missing_last(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Sort values: numbers before strings, numbers numerically, strings by lowercase text.
fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Value::Number(_), _) => Ordering::Less,
        (_, Value::Number(_)) => Ordering::Greater,
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}
