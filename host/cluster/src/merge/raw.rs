//! The merge of search answers read without building their documents.
//!
//! Parsing every hit of every node answer into a value tree (maps of strings, nested values)
//! was most of a scatter's cost. Here each hit is read as its members' raw JSON text; only what
//! the merge orders by (`_rankingScore`, `_rankingScoreDetails`, the primary key, the distinct
//! attribute) becomes a value, in a small stand-in hit given to the same merge as
//! [`merge_search`](super::merge_search). The page's hits are then written from the nodes'
//! text, with the members the client does not get left out. The answer equals
//! [`merge_search`](super::merge_search)'s.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{merge_parts, MergeSettings, RankKey, RESERVED_PREFIX};

/// The stand-in hit's member naming the original: `[answer, hit]`.
const ORIGIN: &str = "_miroir_origin";
/// The ranking score details, which the merge orders by.
const DETAILS: &str = "_rankingScoreDetails";
/// A hit's ranking score details as [`super::hybrid::semantic_hits`] reads them: the rules'
/// names (their details are read by [`RankKey::of_raw`]).
fn details_stand_in(raw: &RawValue) -> Option<Value> {
    if !raw.get().starts_with('{') {
        return serde_json::from_str(raw.get()).ok();
    }
    let rules: RawObject<'_> = serde_json::from_str(raw.get()).ok()?;
    Some(Value::Object(
        rules.0.into_iter().map(|(name, _)| (name.into_owned(), Value::Null)).collect(),
    ))
}

/// A JSON object's members as raw text, in order.
pub(super) struct RawObject<'a>(pub(super) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl<'a> RawObject<'a> {
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        // The last of duplicate members, as a value tree keeps.
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// A node's answer read in one pass: its hits as raw members, every other member as a value.
struct Top<'a>(Vec<(String, Member<'a>)>);

enum Member<'a> {
    Hits(Vec<RawObject<'a>>),
    Other(Value),
}

impl<'de: 'a, 'a> Deserialize<'de> for Top<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a search answer")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let member = if key == "hits" {
                        Member::Hits(map.next_value()?)
                    } else {
                        Member::Other(map.next_value()?)
                    };
                    members.push((key, member));
                }
                Ok(Top(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A node's answer: its hits as raw members, and the answer with stand-in hits for the merge
/// (everything else as values). `None` when the body is not an object with a list of object
/// hits (merged the usual way).
fn read<'a>(body: &'a [u8], at: usize, merge_keys: &[&str]) -> Option<(Vec<RawObject<'a>>, Value)> {
    let top: Top<'a> = serde_json::from_slice(body).ok()?;
    // Only answers that count semantic hits need the details' rule names.
    let semantic = top.0.iter().any(|(key, _)| key == "semanticHitCount");
    let mut hits = None;
    let mut stand_in = Map::new();
    for (key, member) in top.0 {
        match member {
            Member::Hits(list) => {
                let stand_ins = list
                    .iter()
                    .enumerate()
                    .map(|(i, hit)| {
                        let mut fields = Map::new();
                        for key in merge_keys {
                            if let Some(raw) = hit.get(key) {
                                let value = serde_json::from_str(raw.get()).ok()?;
                                fields.insert((*key).to_owned(), value);
                            }
                        }
                        if semantic {
                            if let Some(raw) = hit.get(DETAILS) {
                                fields.insert(DETAILS.to_owned(), details_stand_in(raw)?);
                            }
                        }
                        fields.insert(ORIGIN.into(), Value::from(vec![at, i]));
                        Some(Value::Object(fields))
                    })
                    .collect::<Option<Vec<Value>>>()?;
                stand_in.insert(key, Value::Array(stand_ins));
                hits = Some(list);
            }
            Member::Other(value) => {
                stand_in.insert(key, value);
            }
        }
    }
    Some((hits?, Value::Object(stand_in)))
}

/// [`merge_search`](super::merge_search) of the answers `bodies` (as the nodes sent them),
/// written as JSON; `None` when a body is not a search answer with a list of object hits.
pub fn merge_search_raw(
    client: &Value,
    bodies: &[&[u8]],
    settings: &MergeSettings,
) -> Option<Vec<u8>> {
    let distinct =
        client.get("distinct").and_then(Value::as_str).or(settings.distinct_attribute.as_deref());
    // What the merge reads of a hit besides its rank (read from its raw text by `rank`).
    let mut merge_keys = vec![settings.primary_key.as_str()];
    merge_keys.extend(distinct);
    let (hits, stand_ins): (Vec<Vec<RawObject<'_>>>, Vec<Value>) = bodies
        .iter()
        .enumerate()
        .map(|(at, body)| read(body, at, &merge_keys))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .unzip();
    // A hit's rank is read from its raw score and details when it reaches the head of its list.
    let rank = |at: usize, i: usize, _: &Map<String, Value>| {
        let hit = &hits[at][i];
        RankKey::of_raw(hit.get("_rankingScore"), hit.get(DETAILS))
    };
    let merged = merge_parts(client, &stand_ins, settings, &rank);
    // The page is a part of the answers; grown as needed past this.
    let size: usize = bodies.iter().map(|b| b.len()).sum();
    let mut out = Vec::with_capacity(size.min(64 << 10));
    out.extend_from_slice(b"{\"hits\":[");
    for (n, stand_in) in merged.page.iter().enumerate() {
        let origin = stand_in.get(ORIGIN)?.as_array()?;
        let (at, i) = (origin.first()?.as_u64()? as usize, origin.get(1)?.as_u64()? as usize);
        if n > 0 {
            out.push(b',');
        }
        let shown = |key: &str| {
            !key.starts_with(RESERVED_PREFIX)
                && !merged.hidden.contains(&key)
                && (merged.score || key != "_rankingScore")
                && (merged.details || key != "_rankingScoreDetails")
        };
        write_hit(&mut out, hits.get(at)?.get(i)?, &shown)?;
    }
    out.push(b']');
    for (key, value) in &merged.rest {
        out.push(b',');
        serde_json::to_writer(&mut out, key).ok()?;
        out.push(b':');
        serde_json::to_writer(&mut out, value).ok()?;
    }
    out.push(b'}');
    Some(out)
}

/// `hit`'s members that are `shown`, once each (the last of duplicates, at the first's place, as
/// a value tree holds them); `_formatted` without Miroir's bookkeeping.
fn write_hit(out: &mut Vec<u8>, hit: &RawObject<'_>, shown: &dyn Fn(&str) -> bool) -> Option<()> {
    out.push(b'{');
    let mut first = true;
    for (n, (key, _)) in hit.0.iter().enumerate() {
        if !shown(key) || hit.0[..n].iter().any(|(k, _)| k == key) {
            continue;
        }
        let raw = hit.get(key)?;
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, key).ok()?;
        out.push(b':');
        if key == "_formatted" && raw.get().starts_with('{') {
            let formatted: RawObject<'_> = serde_json::from_str(raw.get()).ok()?;
            write_hit(out, &formatted, &|k| !k.starts_with(RESERVED_PREFIX))?;
        } else {
            out.extend_from_slice(raw.get().as_bytes());
        }
    }
    out.push(b'}');
    Some(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::merge::merge_search;

    fn settings() -> MergeSettings {
        MergeSettings {
            max_total_hits: 1000,
            max_values_per_facet: 100,
            sort_facet_values_by: vec![("*".into(), "alpha".into())],
            primary_key: "sku".into(),
            distinct_attribute: Some("brand".into()),
        }
    }

    fn both(client: &Value, answers: &[Value]) -> (String, String) {
        let bodies: Vec<Vec<u8>> = answers.iter().map(|a| serde_json::to_vec(a).unwrap()).collect();
        let slices: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let raw = merge_search_raw(client, &slices, &settings()).expect("search answers");
        let value = serde_json::to_vec(&merge_search(client, answers, &settings())).unwrap();
        (String::from_utf8(raw).unwrap(), String::from_utf8(value).unwrap())
    }

    #[test]
    fn bookkeeping_and_merge_only_fields_are_left_out_as_the_value_merge_does() {
        let hit = |sku: u64, brand: &str, score: f64| {
            json!({"title": format!("t\"{sku}"), "sku": sku, "brand": brand,
                   "_miroir_shard": {"s3": true}, "_rankingScore": score,
                   "_rankingScoreDetails": {"words": {"order": 0, "score": score}},
                   "_formatted": {"title": "<em>t</em>", "_miroir_shard": {"s3": true}, "sku": "1"}})
        };
        let a = json!({"hits": [hit(1, "acme", 0.9), hit(3, "acme", 0.5)], "estimatedTotalHits": 2,
                       "processingTimeMs": 1, "facetDistribution": {"brand": {"acme": 2}}});
        let b = json!({"hits": [hit(2, "bolt", 0.7)], "estimatedTotalHits": 1, "processingTimeMs": 4,
                       "facetDistribution": {"brand": {"bolt": 1}}});
        for client in [
            json!({"q": "t", "limit": 2, "facets": ["brand"]}),
            json!({"q": "t", "attributesToRetrieve": ["title"], "showRankingScore": true}),
            json!({"q": "t", "page": 1, "hitsPerPage": 1, "showRankingScoreDetails": true}),
        ] {
            let (raw, value) = both(&client, &[a.clone(), b.clone()]);
            assert_eq!(raw, value, "{client}");
            assert!(!raw.contains("_miroir_"), "{raw}");
        }
    }

    #[test]
    fn sorted_geo_and_semantic_answers_merge_as_the_value_merge_does() {
        let hit = |sku: u64, rule: Value| {
            json!({"sku": sku, "brand": format!("b{sku}"), "_rankingScore": 0.5,
                   "_rankingScoreDetails": rule})
        };
        let sorted = |price: Value| json!({"price:desc": {"order": 0, "value": price}, "words": {"order": 1, "score": 1.0}});
        let geo = |d: f64| json!({"_geoPoint(1,2):asc": {"order": 0, "distance": d}});
        let semantic = |s: f64| json!({"vectorSort": {"order": 0, "similarity": s}});
        let cases = [
            (
                vec![hit(1, sorted(json!(9))), hit(2, sorted(json!("x")))],
                vec![hit(3, sorted(json!(10))), hit(4, sorted(Value::Null))],
                json!({}),
            ),
            (vec![hit(1, geo(5.0)), hit(2, geo(50.0))], vec![hit(3, geo(7.0))], json!({})),
            (
                vec![hit(1, semantic(0.9)), hit(2, json!({"words": {"order": 0, "score": 0.4}}))],
                vec![hit(3, semantic(0.95))],
                json!({"semanticHitCount": 1}),
            ),
        ];
        for (a, b, extra) in cases {
            let answer = |hits: Vec<Value>| {
                let mut answer =
                    json!({"hits": hits, "estimatedTotalHits": 9, "processingTimeMs": 2});
                answer.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
                answer
            };
            let client = json!({"q": "x", "limit": 3, "showRankingScoreDetails": true});
            let (raw, value) = both(&client, &[answer(a), answer(b)]);
            assert_eq!(raw, value);
        }
    }

    #[test]
    fn answers_of_another_shape_are_left_to_the_value_merge() {
        let client = json!({"q": ""});
        for body in [&b"not json"[..], b"[1]", b"{\"hits\": 3}", b"{\"hits\": [1]}", b"{}"] {
            assert!(merge_search_raw(&client, &[body], &settings()).is_none());
        }
    }
}
