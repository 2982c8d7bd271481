//! The answer of one node that holds every document of the index: already what one node gives,
//! once the bookkeeping fields are taken out.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::RESERVED_PREFIX;

/// `answer` (a node's search answer to the client's own request) without bookkeeping: no
/// `_miroir_*` field in hits or their `_formatted`, no `_miroir_*` facet.
pub fn whole_answer(mut answer: Value) -> Value {
    if let Some(Value::Array(hits)) = answer.get_mut("hits") {
        for hit in hits.iter_mut().filter_map(Value::as_object_mut) {
            hit.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
            if let Some(Value::Object(formatted)) = hit.get_mut("_formatted") {
                formatted.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
            }
        }
    }
    for key in ["facetDistribution", "facetStats"] {
        if let Some(Value::Object(facets)) = answer.get_mut(key) {
            facets.retain(|k, _| !k.starts_with(RESERVED_PREFIX));
        }
    }
    answer
}

/// [`whole_answer`] on the node's bytes, without building the answer in memory: the same
/// fields are taken out and everything else is copied as the node wrote it (order, numbers and
/// spacing kept). `None` when `answer` is not a JSON object.
///
/// Every search through a node holding the whole index pays this, so it only scans: an answer
/// naming no `"_miroir_` is returned as it is, otherwise the top level, the hits, their
/// `_formatted` and the facet maps are split into raw fields and the others copied.
pub fn whole_answer_bytes(answer: &[u8]) -> Option<Cow<'_, [u8]>> {
    let marker = format!("\"{RESERVED_PREFIX}");
    if !contains(answer, marker.as_bytes()) {
        return serde_json::from_slice::<&RawValue>(answer)
            .ok()
            .filter(|raw| raw.get().trim_start().starts_with('{'))
            .map(|_| Cow::Borrowed(answer));
    }
    let top: Fields<'_> = serde_json::from_slice(answer).ok()?;
    let mut out = Vec::with_capacity(answer.len());
    write_object(&mut out, &top, |out, key, value| match key {
        "hits" => write_hits(out, value),
        "facetDistribution" | "facetStats" => write_filtered(out, value),
        _ => {
            out.extend_from_slice(value.get().as_bytes());
            Some(())
        }
    })?;
    Some(Cow::Owned(out))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// The fields of one JSON object in their order, values left as written.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    fields.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// An object key, borrowed from the input unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Writes `fields` as an object, without bookkeeping keys; `value` writes each kept value.
fn write_object(
    out: &mut Vec<u8>,
    fields: &Fields<'_>,
    mut value: impl FnMut(&mut Vec<u8>, &str, &RawValue) -> Option<()>,
) -> Option<()> {
    out.push(b'{');
    let mut first = true;
    for (key, raw) in fields.0.iter().filter(|(k, _)| !k.starts_with(RESERVED_PREFIX)) {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key.as_ref()).ok()?;
        out.push(b':');
        value(out, key, raw)?;
    }
    out.push(b'}');
    Some(())
}

/// An object value without its bookkeeping keys (anything else is copied as it is).
fn write_filtered(out: &mut Vec<u8>, raw: &RawValue) -> Option<()> {
    match serde_json::from_str::<Fields<'_>>(raw.get()) {
        Ok(fields) => write_object(out, &fields, copy),
        Err(_) => copy(out, "", raw),
    }
}

fn copy(out: &mut Vec<u8>, _: &str, raw: &RawValue) -> Option<()> {
    out.extend_from_slice(raw.get().as_bytes());
    Some(())
}

/// The hits, each without bookkeeping keys, nor in its `_formatted`.
fn write_hits(out: &mut Vec<u8>, raw: &RawValue) -> Option<()> {
    let Ok(hits) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return copy(out, "", raw);
    };
    out.push(b'[');
    for (i, hit) in hits.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match serde_json::from_str::<Fields<'_>>(hit.get()) {
            Ok(fields) => write_object(out, &fields, |out, key, value| match key {
                "_formatted" => write_filtered(out, value),
                _ => copy(out, key, value),
            })?,
            Err(_) => copy(out, "", hit)?,
        }
    }
    out.push(b']');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bookkeeping_is_taken_out_and_the_rest_kept() {
        let answer = json!({
            "hits": [{"id": 1, "_miroir_shard": {"s0": null}, "_rankingScore": 0.5,
                      "_formatted": {"id": "1", "_miroir_shard": {"s0": null}}}],
            "facetDistribution": {"brand": {"a": 1}, "_miroir_shard.s0": {}},
            "query": "x", "estimatedTotalHits": 1
        });
        assert_eq!(
            whole_answer(answer),
            json!({
                "hits": [{"id": 1, "_rankingScore": 0.5, "_formatted": {"id": "1"}}],
                "facetDistribution": {"brand": {"a": 1}},
                "query": "x", "estimatedTotalHits": 1
            })
        );
    }

    #[test]
    fn the_byte_answer_is_the_value_answer() {
        let answers = [
            json!({"hits": [{"id": 1, "_miroir_shard": {"s0": null}, "t\"q": "a\u{e9}",
                             "_formatted": {"id": "1", "_miroir_shard": {"s0": null}}},
                            {"id": 2, "n": 1.5e300, "_miroir_shard": {"s0": null}}],
                   "facetDistribution": {"brand": {"a": 1}, "_miroir_shard.s0": {}},
                   "facetStats": {"_miroir_x": {"min": 1}, "price": {"min": 1, "max": 2}},
                   "query": "_miroir_ in a value", "processingTimeMs": 1, "estimatedTotalHits": 2}),
            json!({"hits": [{"id": 1}], "query": "", "limit": 20}),
            json!({"hits": [], "facetDistribution": null}),
        ];
        for answer in answers {
            let bytes = serde_json::to_vec(&answer).unwrap();
            let stripped = whole_answer_bytes(&bytes).expect("an object");
            let parsed: Value = serde_json::from_slice(&stripped).expect("JSON");
            assert_eq!(parsed, whole_answer(answer.clone()), "{answer}");
            // The node's order of fields is kept.
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&parsed), keys(&whole_answer(answer)));
        }
        let spaced = b"{ \"hits\" : [ { \"id\" : 1 } ] }";
        assert_eq!(
            whole_answer_bytes(spaced).as_deref(),
            Some(&spaced[..]),
            "untouched: nothing to take out"
        );
        assert!(whole_answer_bytes(b"[1]").is_none() && whole_answer_bytes(b"{").is_none());
        assert!(whole_answer_bytes(b"{\"_miroir_a\": 1").is_none());
    }
}
