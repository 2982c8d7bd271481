//! The answer of one node that holds every document of the index: already what one node gives,
//! once the bookkeeping fields are taken out.

use std::borrow::Cow;

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
/// spacing kept). `None` when `answer` is not a JSON object (its structure is checked, not
/// every number or escape in it: the node wrote it).
///
/// Every search through a node holding the whole index pays this, so it is one pass over the
/// bytes that only follows the structure (strings are skipped with `memchr`) and notes the
/// `_miroir_*` members of the hits, of their `_formatted` and of the facet maps; the answer is
/// then copied around them, or returned as it is when there are none.
pub fn whole_answer_bytes(answer: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut scan = Scan { bytes: answer, at: 0, cuts: Vec::new(), depth: 0 };
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
    Facets,
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
}

impl Scan<'_> {
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
                (Kind::Root, b"facetDistribution" | b"facetStats") => Kind::Facets,
                (Kind::Hit, b"_formatted") => Kind::Formatted,
                _ => Kind::Other,
            };
            let cut = matches!(kind, Kind::Hit | Kind::Formatted | Kind::Facets)
                && key.starts_with(RESERVED_PREFIX.as_bytes());
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
                    self.cuts.push((previous, value_end));
                    kept_end = Some(value_end);
                }
                // First member: cut it with the comma after it.
                (true, None) if next == b',' => {
                    self.at += 1;
                    self.whitespace();
                    self.cuts.push((key_at, self.at));
                    continue;
                }
                (true, None) => self.cuts.push((key_at, value_end)),
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
        let broken: [&[u8]; 5] =
            [br#"{"hits": [{"a": "\"}]}"#, br#"{"a" 1}"#, br#"{"a": 1,}x"#, b"{} {}", b""];
        for broken in broken {
            assert!(whole_answer_bytes(broken).is_none(), "{}", String::from_utf8_lossy(broken));
        }
    }
}
