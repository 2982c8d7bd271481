//! Shaping one hit: the attributes shown (`displayedAttributes` and `attributesToRetrieve`),
//! `_formatted` (highlighting, cropping, numbers as text) and `_matchesPosition`.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::index::{Document, Index};

use super::facets::pattern_matches;
use super::matching::match_spans;
use super::query::SearchQuery;
use super::terms::Term;
use super::tokenizer::tokenize;
use super::vectors::{displayed as displayed_vectors, VECTORS_FIELD};

/// What to show of each hit, fixed once per search.
pub struct HitFormat<'a> {
    index: &'a Index,
    displayed: Vec<String>,
    retrieve: Option<Vec<String>>,
    highlight: Option<Vec<String>>,
    crop: Vec<(String, Option<usize>)>,
    query: &'a SearchQuery,
    terms: &'a [Term],
    stop_words: &'a HashSet<String>,
}

fn selected(list: &[String], field: &str) -> bool {
    list.iter().any(|p| pattern_matches(p, field))
}

impl<'a> HitFormat<'a> {
    pub fn new(
        index: &'a Index,
        query: &'a SearchQuery,
        terms: &'a [Term],
        stop_words: &'a HashSet<String>,
    ) -> Self {
        let crop = query
            .attributes_to_crop
            .iter()
            .flatten()
            .map(|a| match a.rsplit_once(':') {
                Some((name, len)) => match len.parse() {
                    Ok(n) => (name.to_string(), Some(n)),
                    Err(_) => (a.clone(), None),
                },
                None => (a.clone(), None),
            })
            .collect();
        Self {
            index,
            displayed: index.settings.displayed_attributes.clone(),
            retrieve: query.attributes_to_retrieve.clone(),
            highlight: query.attributes_to_highlight.clone(),
            crop,
            query,
            terms,
            stop_words,
        }
    }

    /// Whether top-level attribute `field` is shown (`_vectors` only with `retrieveVectors`).
    fn shown(&self, field: &str) -> bool {
        field != VECTORS_FIELD
            && selected(&self.displayed, field)
            && self.retrieve.as_ref().is_none_or(|r| selected(r, field))
    }

    fn wants_formatted(&self) -> bool {
        self.highlight.is_some() || !self.crop.is_empty()
    }

    /// The hit object for `doc`, before ranking fields are added.
    pub fn hit(&self, doc: &Document) -> Map<String, Value> {
        let mut hit: Map<String, Value> = doc
            .iter()
            .filter(|(k, _)| self.shown(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if self.wants_formatted() {
            let formatted: Map<String, Value> =
                hit.iter().map(|(k, v)| (k.clone(), self.format_value(k, v))).collect();
            hit.insert("_formatted".into(), Value::Object(formatted));
        }
        if self.query.show_matches_position {
            let mut positions = Map::new();
            for (k, v) in doc.iter().filter(|(k, _)| self.shown(k)) {
                self.matches_position(k, v, None, &mut positions);
            }
            hit.insert("_matchesPosition".into(), Value::Object(positions));
        }
        if self.query.retrieve_vectors {
            hit.insert(VECTORS_FIELD.into(), displayed_vectors(&self.index.settings, doc));
        }
        hit
    }

    fn format_value(&self, path: &str, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.format_text(path, s)),
            Value::Number(n) => Value::String(self.format_text(path, &n.to_string())),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.format_value(path, v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.format_value(&format!("{path}.{k}"), v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn format_text(&self, path: &str, text: &str) -> String {
        let highlight = self.highlight.as_ref().is_some_and(|h| selected(h, path));
        let crop = self
            .crop
            .iter()
            .find(|(name, _)| pattern_matches(name, path))
            .map(|(_, len)| len.unwrap_or(self.query.crop_length));
        if !highlight && crop.is_none() {
            return text.to_string();
        }
        let spans = if self.terms.is_empty() {
            Vec::new()
        } else {
            match_spans(self.terms, self.stop_words, text)
        };
        let (from, to, before, after) = match crop {
            Some(len) => crop_window(text, &spans, len),
            None => (0, text.len(), false, false),
        };
        let mut out = String::new();
        if before {
            out.push_str(&self.query.crop_marker);
        }
        let mut at = from;
        if highlight {
            for &(start, len) in spans.iter().filter(|(s, l)| *s >= from && s + l <= to) {
                if start < at {
                    continue;
                }
                out.push_str(&text[at..start]);
                out.push_str(&self.query.highlight_pre_tag);
                out.push_str(&text[start..start + len]);
                out.push_str(&self.query.highlight_post_tag);
                at = start + len;
            }
        }
        out.push_str(&text[at..to]);
        if after {
            out.push_str(&self.query.crop_marker);
        }
        out
    }

    fn matches_position(
        &self,
        path: &str,
        value: &Value,
        index: Option<usize>,
        out: &mut Map<String, Value>,
    ) {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    self.matches_position(path, v, Some(index.unwrap_or(i)), out);
                }
                return;
            }
            Value::Object(map) => {
                for (k, v) in map {
                    self.matches_position(&format!("{path}.{k}"), v, index, out);
                }
                return;
            }
            _ => return,
        };
        if self.terms.is_empty() {
            return;
        }
        for (start, length) in match_spans(self.terms, self.stop_words, &text) {
            let mut entry = json!({"start": start, "length": length});
            if let Some(i) = index {
                entry["indices"] = json!([i]);
            }
            if let Value::Array(list) =
                out.entry(path.to_string()).or_insert_with(|| Value::Array(Vec::new()))
            {
                list.push(entry);
            }
        }
    }
}

/// The byte range of `text` kept by cropping to `len` words around the matches, and whether
/// words were cut before and after it.
fn crop_window(text: &str, spans: &[(usize, usize)], len: usize) -> (usize, usize, bool, bool) {
    let tokens = tokenize(text);
    if tokens.is_empty() || len == 0 {
        return (0, 0, false, !tokens.is_empty());
    }
    if tokens.len() <= len {
        return (0, text.len(), false, false);
    }
    let matched: Vec<bool> =
        tokens.iter().map(|t| spans.iter().any(|(s, _)| *s == t.start)).collect();
    let mut best = (0usize, 0usize);
    for start in 0..=tokens.len() - len {
        let count = matched[start..start + len].iter().filter(|m| **m).count();
        if count > best.1 {
            best = (start, count);
        }
    }
    let mut start = best.0;
    if best.1 > 0 {
        let window = &matched[best.0..best.0 + len];
        let first = best.0 + window.iter().position(|m| *m).unwrap_or(0);
        let last = best.0 + window.iter().rposition(|m| *m).unwrap_or(0);
        let extra = len - (last - first + 1);
        start = first.saturating_sub(extra / 2).min(tokens.len() - len);
    }
    let end = start + len - 1;
    let from = if start == 0 { 0 } else { tokens[start].start };
    let to = if end + 1 == tokens.len() { text.len() } else { tokens[end].end };
    (from, to, start > 0, end + 1 < tokens.len())
}
