//! The answer of one node that holds every document of the index: already what one node gives,
//! once the bookkeeping fields are taken out.

use std::borrow::Cow;

use serde_json::Value;

use super::RESERVED_PREFIX;

/// `answer` (a node's search answer to the client's own request) without bookkeeping: no
/// `_miroir_*` field in hits or their `_formatted`, no `_miroir_*` facet, and no more than
/// `max_values_per_facet` values per facet (the nodes may hold more than the client sees: the
/// first ones in the node's order are kept).
pub fn whole_answer(mut answer: Value, max_values_per_facet: usize) -> Value {
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
    if let Some(Value::Object(facets)) = answer.get_mut("facetDistribution") {
        for values in facets.values_mut().filter_map(Value::as_object_mut) {
            if values.len() > max_values_per_facet {
                *values = std::mem::take(values).into_iter().take(max_values_per_facet).collect();
            }
        }
    }
    answer
}

/// [`whole_answer`] on the node's bytes, without building the answer in memory: the same
/// fields are taken out and everything else is copied as the node wrote it (order, numbers and
/// spacing kept). `None` when `answer` is not a JSON object (its structure is checked, not
/// every number or escape in it: the node wrote it).
/// `max_values_per_facet` cuts each facet's values as [`whole_answer`] does.
///
/// Every search through a node holding the whole index pays this, so it is one pass over the
/// bytes that only follows the structure (strings are skipped with `memchr`) and notes the
/// `_miroir_*` members of the hits, of their `_formatted` and of the facet maps; the answer is
/// then copied around them, or returned as it is when there are none.
pub fn whole_answer_bytes(answer: &[u8], max_values_per_facet: usize) -> Option<Cow<'_, [u8]>> {
    let mut scan = Scan { bytes: answer, at: 0, cuts: Vec::new(), depth: 0, max_values_per_facet };
    scan.whitespace();
    if scan.peek()? != b'{' {
        return None;
    }
    scan.value(Kind::Root)?;
    scan.whitespace();
    if scan.at != answer.len() {
        return None;
    }
    if scan.cuts.is_empty() {
        return Some(Cow::Borrowed(answer));
    }
    let mut out = Vec::with_capacity(answer.len());
    let mut from = 0;
    for (start, end) in scan.cuts {
        out.extend_from_slice(&answer[from..start]);
        from = end;
    }
    out.extend_from_slice(&answer[from..]);
    Some(Cow::Owned(out))
}

/// What an object or array is in a search answer, for the members to take out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    Hits,
    Hit,
    Formatted,
    /// `facetDistribution`.
    Facets,
    /// One facet's values in `facetDistribution`.
    FacetValues,
    /// `facetStats`.
    Stats,
    Other,
}

/// Nesting deeper than this is refused (`None`), as serde_json refuses it.
const MAX_DEPTH: usize = 128;

/// A structural pass over a JSON text, noting the byte ranges to cut.
struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    cuts: Vec<(usize, usize)>,
    depth: usize,
    max_values_per_facet: usize,
}

impl Scan<'_> {
    /// Notes `start..end` to cut, replacing the cuts inside it (a member cut whole, whose
    /// values were cut first).
    fn cut(&mut self, start: usize, end: usize) {
        while self.cuts.last().is_some_and(|&(inner, _)| inner >= start) {
            self.cuts.pop();
        }
        self.cuts.push((start, end));
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// Skips one value starting here (whitespace already skipped).
    fn value(&mut self, kind: Kind) -> Option<()> {
        match self.peek()? {
            b'{' => self.nested(|scan| scan.object(kind)),
            b'[' => self.nested(|scan| scan.array(kind)),
            b'"' => self.string().map(|_| ()),
            _ => {
                let start = self.at;
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
                ) {
                    self.at += 1;
                }
                (self.at > start).then_some(())
            }
        }
    }

    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let done = inner(self);
        self.depth -= 1;
        done
    }

    /// Skips a string; returns its raw content (escapes left as they are).
    fn string(&mut self) -> Option<(usize, usize)> {
        let start = self.at + 1;
        let mut at = start;
        loop {
            at += memchr::memchr2(b'"', b'\\', self.bytes.get(at..)?)?;
            if self.bytes[at] == b'\\' {
                at += 2;
                continue;
            }
            self.at = at + 1;
            return Some((start, at));
        }
    }

    fn object(&mut self, kind: Kind) -> Option<()> {
        self.at += 1;
        // Where the last member kept (or cut with the comma before it) ends.
        let mut kept_end: Option<usize> = None;
        let mut members = 0;
        loop {
            self.whitespace();
            match self.peek()? {
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                b'"' => {}
                _ => return None,
            }
            let key_at = self.at;
            let (start, end) = self.string()?;
            let key = &self.bytes[start..end];
            self.whitespace();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            self.whitespace();
            let child = match (kind, key) {
                (Kind::Root, b"hits") => Kind::Hits,
                (Kind::Root, b"facetDistribution") => Kind::Facets,
                (Kind::Root, b"facetStats") => Kind::Stats,
                (Kind::Facets, _) => Kind::FacetValues,
                (Kind::Hit, b"_formatted") => Kind::Formatted,
                _ => Kind::Other,
            };
            let cut = match kind {
                Kind::FacetValues => members >= self.max_values_per_facet,
                Kind::Hit | Kind::Formatted | Kind::Facets | Kind::Stats => {
                    key.starts_with(RESERVED_PREFIX.as_bytes())
                }
                Kind::Root | Kind::Hits | Kind::Other => false,
            };
            members += 1;
            self.value(child)?;
            let value_end = self.at;
            self.whitespace();
            let next = self.peek()?;
            if !matches!(next, b',' | b'}') {
                return None;
            }
            match (cut, kept_end) {
                (false, _) => kept_end = Some(value_end),
                // After a kept member: cut from its end (the comma before this one).
                (true, Some(previous)) => {
                    self.cut(previous, value_end);
                    kept_end = Some(value_end);
                }
                // First member: cut it with the comma after it.
                (true, None) if next == b',' => {
                    self.at += 1;
                    self.whitespace();
                    self.cut(key_at, self.at);
                    continue;
                }
                (true, None) => self.cut(key_at, value_end),
            }
            if next == b',' {
                self.at += 1;
            }
        }
    }

    fn array(&mut self, kind: Kind) -> Option<()> {
        self.at += 1;
        let child = if kind == Kind::Hits { Kind::Hit } else { Kind::Other };
        self.whitespace();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.whitespace();
            self.value(child)?;
            self.whitespace();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
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
            whole_answer(answer, 100),
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
            // Members cut first, last, alone, one after another; a document's own nested
            // `_miroir_` field and strings naming the prefix are kept.
            json!({"hits": [{"_miroir_shard": {"s1": null}, "_miroir_b": 1, "id": "x\"_miroir_shard\":1",
                             "meta": {"_miroir_own": [1, {"a": "\\"}], "b": []}},
                            {"_miroir_shard": {"s1": null}},
                            {"id": 3, "_miroir_shard": {"s0": null}, "_miroir_z": "}"},
                            {"_formatted": {"_miroir_shard": {"s0": null}}, "id": 4, "_miroir_shard": {"s0": null}}],
                   "facetDistribution": {"_miroir_shard.s0": {"x": 1}}, "facetStats": {},
                   "estimatedTotalHits": 4, "_miroir_top": "a top-level field is the node's"}),
        ];
        let written = answers.iter().flat_map(|answer| {
            [serde_json::to_vec(answer).unwrap(), serde_json::to_vec_pretty(answer).unwrap()]
        });
        for (answer, bytes) in answers.iter().flat_map(|a| [a, a]).zip(written) {
            let answer = answer.clone();
            let stripped = whole_answer_bytes(&bytes, 100).expect("an object");
            let parsed: Value = serde_json::from_slice(&stripped).expect("JSON");
            assert_eq!(parsed, whole_answer(answer.clone(), 100), "{answer}");
            // The node's order of fields is kept.
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&parsed), keys(&whole_answer(answer, 100)));
        }
        let spaced = b"{ \"hits\" : [ { \"id\" : 1 } ] }";
        assert_eq!(
            whole_answer_bytes(spaced, 100).as_deref(),
            Some(&spaced[..]),
            "untouched: nothing to take out"
        );
        assert!(
            whole_answer_bytes(b"[1]", 100).is_none() && whole_answer_bytes(b"{", 100).is_none()
        );
        assert!(whole_answer_bytes(b"{\"_miroir_a\": 1", 100).is_none());
        let broken: [&[u8]; 5] =
            [br#"{"hits": [{"a": "\"}]}"#, br#"{"a" 1}"#, br#"{"a": 1,}x"#, b"{} {}", b""];
        for broken in broken {
            assert!(
                whole_answer_bytes(broken, 100).is_none(),
                "{}",
                String::from_utf8_lossy(broken)
            );
        }
    }

    #[test]
    fn each_facet_keeps_its_first_values_in_the_node_order() {
        let answer = json!({
            "hits": [],
            "facetDistribution": {"brand": {"z": 9, "a": 5, "m": 1}, "_miroir_shard.s0": {"s": 1},
                                  "color": {"red": 2}, "tags": {}},
            "facetStats": {"price": {"min": 1, "max": 2}}
        });
        let cut = json!({
            "hits": [],
            "facetDistribution": {"brand": {"z": 9, "a": 5}, "color": {"red": 2}, "tags": {}},
            "facetStats": {"price": {"min": 1, "max": 2}}
        });
        let bytes = serde_json::to_vec(&answer).unwrap();
        let stripped = whole_answer_bytes(&bytes, 2).expect("an object");
        let parsed: Value = serde_json::from_slice(&stripped).expect("JSON");
        assert_eq!(parsed, cut);
        let brand: Vec<_> =
            parsed["facetDistribution"]["brand"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(brand, ["z", "a"], "the node's order");
        assert_eq!(whole_answer(answer.clone(), 2), cut);
        let none: Value = serde_json::from_slice(&whole_answer_bytes(&bytes, 0).unwrap()).unwrap();
        assert_eq!(none["facetDistribution"], json!({"brand": {}, "color": {}, "tags": {}}));
    }
}
