//! Where each query term occurs in a document: for every term, each occurrence's searchable
//! attribute, position, typo count and whether it is the exact query word. Everything here
//! depends only on the document, the query and the settings.

use std::collections::{HashMap, HashSet};

use crate::index::Document;

use super::terms::{Term, TermKind};
use super::tokenizer::{tokenize_value, Token};
use super::typo::typos;

/// One place a term matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Occurrence {
    /// Which searchable attribute (its index in the searched list).
    pub field: usize,
    /// The attribute's weight for `attributeRank`: 0 ranks first.
    pub weight: usize,
    /// Position of the first matched word.
    pub pos: u32,
    /// Position of the last matched word (same as `pos` for one word).
    pub end: u32,
    pub typos: u8,
    /// The query word itself, not a prefix, typo or synonym form.
    pub exact: bool,
}

/// The words of one attribute value, as indexed (stop words dropped, positions kept).
#[derive(Debug, Clone)]
pub struct FieldValue {
    pub field: usize,
    pub weight: usize,
    pub tokens: Vec<Token>,
}

/// A document seen through the query.
#[derive(Debug, Clone)]
pub struct DocMatch {
    /// Per term, every occurrence.
    pub occurrences: Vec<Vec<Occurrence>>,
    /// The document's searchable values, for exactness.
    pub values: Vec<FieldValue>,
}

impl DocMatch {
    /// Whether term `t` occurs at all.
    pub fn has(&self, t: usize) -> bool {
        !self.occurrences[t].is_empty()
    }
}

/// Matches query terms against document words, remembering each word's verdict.
pub struct Matcher<'a> {
    terms: &'a [Term],
    stop_words: HashSet<String>,
    cache: HashMap<String, Vec<Option<(u8, bool)>>>,
    /// Per searched attribute, whether typos are off there (`disableOnAttributes`).
    typo_free: Vec<bool>,
}

impl<'a> Matcher<'a> {
    pub fn new(terms: &'a [Term], stop_words: HashSet<String>) -> Self {
        Self { terms, stop_words, cache: HashMap::new(), typo_free: Vec::new() }
    }

    /// Turn typos off in the searched attributes flagged `true` (same order as the fields).
    pub fn with_typo_free_fields(mut self, flags: Vec<bool>) -> Self {
        self.typo_free = flags;
        self
    }

    fn typos_allowed_in(&self, field: usize) -> bool {
        !self.typo_free.get(field).copied().unwrap_or(false)
    }

    /// How each one-word term matches document word `word`: `(typos, exact)`.
    fn verdicts(&mut self, word: &str) -> &[Option<(u8, bool)>] {
        if !self.cache.contains_key(word) {
            let verdicts = self.terms.iter().map(|t| word_verdict(t, word)).collect();
            self.cache.insert(word.to_string(), verdicts);
        }
        self.cache.get(word).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The searchable values of `doc` over `fields` (each attribute with its weight: its index
    /// in the searchable attributes).
    pub fn values(&self, doc: &Document, fields: &[(usize, String)]) -> Vec<FieldValue> {
        let mut out = Vec::new();
        for (field, (weight, name)) in fields.iter().enumerate() {
            for value in field_values(doc, name) {
                let mut tokens = tokenize_value(value);
                tokens.retain(|t| !self.stop_words.contains(&t.word));
                out.push(FieldValue { field, weight: *weight, tokens });
            }
        }
        out
    }

    /// Every occurrence of every term in `doc`.
    pub fn analyse(&mut self, doc: &Document, fields: &[(usize, String)]) -> DocMatch {
        let values = self.values(doc, fields);
        let mut occurrences: Vec<Vec<Occurrence>> = vec![Vec::new(); self.terms.len()];
        for value in &values {
            for (i, token) in value.tokens.iter().enumerate() {
                let verdicts = self.verdicts(&token.word).to_vec();
                let typos_allowed = self.typos_allowed_in(value.field);
                for (t, verdict) in verdicts.iter().enumerate() {
                    if let Some((typos, exact)) = verdict {
                        if *typos > 0 && !typos_allowed {
                            continue;
                        }
                        occurrences[t].push(Occurrence {
                            field: value.field,
                            weight: value.weight,
                            pos: token.pos,
                            end: token.pos,
                            typos: *typos,
                            exact: *exact,
                        });
                    }
                }
                for (t, term) in self.terms.iter().enumerate() {
                    if let TermKind::Phrase { words } = &term.kind {
                        if let Some(end) = sequence_at(&value.tokens, i, words) {
                            occurrences[t].push(Occurrence {
                                field: value.field,
                                weight: value.weight,
                                pos: token.pos,
                                end,
                                typos: 0,
                                exact: true,
                            });
                        }
                    }
                    for syn in term.synonyms.iter().filter(|s| s.len() > 1) {
                        if let Some(end) = sequence_at(&value.tokens, i, syn) {
                            occurrences[t].push(Occurrence {
                                field: value.field,
                                weight: value.weight,
                                pos: token.pos,
                                end,
                                typos: 0,
                                exact: false,
                            });
                        }
                    }
                    if let Some(split) = term.split.as_ref().filter(|_| typos_allowed) {
                        if let Some(end) = sequence_at(&value.tokens, i, split) {
                            occurrences[t].push(Occurrence {
                                field: value.field,
                                weight: value.weight,
                                pos: token.pos,
                                end,
                                typos: 1,
                                exact: false,
                            });
                        }
                    }
                }
            }
        }
        DocMatch { occurrences, values }
    }

    /// Whether `doc` contains one of the `negative` words or phrases.
    pub fn contains_any(
        &self,
        doc: &Document,
        fields: &[(usize, String)],
        negative: &[Vec<String>],
    ) -> bool {
        if negative.is_empty() {
            return false;
        }
        self.values(doc, fields).iter().any(|value| {
            (0..value.tokens.len()).any(|i| {
                negative.iter().any(|words| sequence_at(&value.tokens, i, words).is_some())
            })
        })
    }
}

/// The values of attribute `name` in `doc`, following dots into nested objects.
pub fn field_values<'d>(doc: &'d Document, name: &str) -> Vec<&'d serde_json::Value> {
    if let Some(v) = doc.get(name) {
        return vec![v];
    }
    let mut out = Vec::new();
    if let Some((head, rest)) = name.split_once('.') {
        if let Some(inner) = doc.get(head) {
            nested_values(inner, rest, &mut out);
        }
    }
    out
}

fn nested_values<'d>(
    value: &'d serde_json::Value,
    path: &str,
    out: &mut Vec<&'d serde_json::Value>,
) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(v) = map.get(path) {
                out.push(v);
            } else if let Some((head, rest)) = path.split_once('.') {
                if let Some(inner) = map.get(head) {
                    nested_values(inner, rest, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| nested_values(v, path, out)),
        _ => {}
    }
}

/// How a one-word term matches `word`, if it does.
fn word_verdict(term: &Term, word: &str) -> Option<(u8, bool)> {
    let TermKind::Word { text, prefix, max_typos } = &term.kind else {
        return None;
    };
    if word == text {
        return Some((0, true));
    }
    if *prefix && word.starts_with(text.as_str()) {
        return Some((0, false));
    }
    if term.synonyms.iter().any(|s| s.len() == 1 && s[0] == word) {
        return Some((0, false));
    }
    match &term.typo_words {
        Some(known) => known.get(word).map(|t| (*t, false)),
        None => typos(text, word, *prefix, *max_typos).map(|t| (t, false)),
    }
}

/// If `words` follow each other from token `i`, the position of the last one.
fn sequence_at(tokens: &[Token], i: usize, words: &[String]) -> Option<u32> {
    if words.is_empty() || i + words.len() > tokens.len() {
        return None;
    }
    let run = &tokens[i..i + words.len()];
    let same = run.iter().zip(words).all(|(t, w)| &t.word == w);
    let tight = run.windows(2).all(|p| p[1].pos <= p[0].pos + 2);
    (same && tight).then(|| run[run.len() - 1].pos)
}

/// Byte spans `(start, length)` of `text` that match the query terms, for highlighting and
/// `_matchesPosition`. A prefix match covers only the matched start of the word.
pub fn match_spans(
    terms: &[Term],
    stop_words: &HashSet<String>,
    text: &str,
) -> Vec<(usize, usize)> {
    let tokens: Vec<Token> = super::tokenizer::tokenize(text)
        .into_iter()
        .filter(|t| !stop_words.contains(&t.word))
        .collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        for term in terms {
            match &term.kind {
                TermKind::Word { text: q, prefix, .. } => {
                    let Some((_, exact)) = word_verdict(term, &token.word) else { continue };
                    let original = &text[token.start..token.end];
                    let len = if !exact && *prefix && token.word.starts_with(q.as_str()) {
                        let n = q.chars().count();
                        original.char_indices().nth(n).map_or(original.len(), |(b, _)| b)
                    } else {
                        original.len()
                    };
                    spans.push((token.start, len));
                }
                TermKind::Phrase { words } => {
                    if sequence_at(&tokens, i, words).is_some() {
                        for t in &tokens[i..i + words.len()] {
                            spans.push((t.start, t.end - t.start));
                        }
                    }
                }
            }
            for syn in term.synonyms.iter().filter(|s| s.len() > 1) {
                if sequence_at(&tokens, i, syn).is_some() {
                    for t in &tokens[i..i + syn.len()] {
                        spans.push((t.start, t.end - t.start));
                    }
                }
            }
        }
    }
    spans.sort_unstable();
    spans.dedup_by(|b, a| {
        if b.0 == a.0 {
            a.1 = a.1.max(b.1);
            true
        } else {
            false
        }
    });
    spans
}
