//! The query string as search terms: words and `"phrases"`, negated `-words`, stop words
//! removed (their positions still count), prefix search on the last word when the query does
//! not end with a separator, the typos each word allows and its synonyms.

use crate::settings::Settings;

use super::tokenizer::{normalize, tokenize};
use super::typo::allowed_typos;

/// What a term is made of.
#[derive(Debug, Clone, PartialEq)]
pub enum TermKind {
    /// One word; `prefix` lets it match the start of longer words.
    Word { text: String, prefix: bool, max_typos: u8 },
    /// Words that must follow each other, without typos.
    Phrase { words: Vec<String> },
}

/// One positive term of the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    pub kind: TermKind,
    /// Other forms that match with no typo: each synonym, as its words.
    pub synonyms: Vec<Vec<String>>,
    /// The word cut in two adjacent words (`12` → `1 2`), a one-typo form.
    pub split: Option<Vec<String>>,
    /// The index words the term reaches with typos, with their typo count, when the index's
    /// vocabulary is known (Meilisearch caps how many typo forms a term has).
    pub typo_words: Option<std::collections::HashMap<String, u8>>,
    /// Whether the index's typo tolerance is on.
    pub typo_tolerant: bool,
    /// Its index among the query's terms, which word position is measured against.
    pub index: usize,
}

impl Term {
    /// How many query words the term stands for (the `words` rule counts words).
    pub fn word_count(&self) -> usize {
        match &self.kind {
            TermKind::Word { .. } => 1,
            TermKind::Phrase { words } => words.len(),
        }
    }

    /// The typos the `typo` rule counts this term for: what the word allows, and at least one
    /// for any word while typo tolerance is on (Meilisearch counts a one-letter word as one:
    /// recorded `maxTypoCount` 1 for the query `5`); a phrase allows none.
    pub fn max_typos(&self) -> u8 {
        match &self.kind {
            TermKind::Word { max_typos, .. } if self.typo_tolerant => (*max_typos).max(1),
            TermKind::Word { max_typos, .. } => *max_typos,
            TermKind::Phrase { .. } => 0,
        }
    }

    /// The term's words, in order.
    pub fn words(&self) -> Vec<&str> {
        match &self.kind {
            TermKind::Word { text, .. } => vec![text.as_str()],
            TermKind::Phrase { words } => words.iter().map(String::as_str).collect(),
        }
    }
}

/// The parsed query: positive terms and the words or phrases documents must not contain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedQuery {
    pub terms: Vec<Term>,
    pub negative: Vec<Vec<String>>,
}

impl ParsedQuery {
    /// Whether the query has nothing to look for (a placeholder search).
    pub fn is_placeholder(&self) -> bool {
        self.terms.is_empty()
    }

    /// The total number of query words (phrases count their words).
    pub fn word_count(&self) -> usize {
        self.terms.iter().map(Term::word_count).sum()
    }
}

/// A piece of the raw query: a run of words, or a quoted phrase, possibly negated.
struct Segment {
    text: String,
    phrase: bool,
    negative: bool,
}

fn segments(q: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut chars = q.chars().peekable();
    let mut current = String::new();
    let at_word_start = |s: &str| s.is_empty() || s.ends_with(char::is_whitespace);
    while let Some(c) = chars.next() {
        if c == '"' {
            let negative = current.ends_with('-') && at_word_start(&current[..current.len() - 1]);
            if negative {
                current.pop();
            }
            if !current.trim().is_empty() {
                out.push(Segment {
                    text: std::mem::take(&mut current),
                    phrase: false,
                    negative: false,
                });
            }
            current.clear();
            let mut phrase = String::new();
            for p in chars.by_ref() {
                if p == '"' {
                    break;
                }
                phrase.push(p);
            }
            out.push(Segment { text: phrase, phrase: true, negative });
        } else if c == '-'
            && at_word_start(&current)
            && chars.peek().is_some_and(|n| n.is_alphanumeric())
        {
            if !current.trim().is_empty() {
                out.push(Segment {
                    text: std::mem::take(&mut current),
                    phrase: false,
                    negative: false,
                });
            }
            current.clear();
            let mut word = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_whitespace() {
                    break;
                }
                word.push(n);
                chars.next();
            }
            out.push(Segment { text: word, phrase: false, negative: true });
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(Segment { text: current, phrase: false, negative: false });
    }
    out
}

fn synonyms_of(word: &str, settings: &Settings) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (key, values) in &settings.synonyms {
        if normalize(key.trim()) == word {
            for v in values {
                let words: Vec<String> = tokenize(v).into_iter().map(|t| t.word).collect();
                if !words.is_empty() && !out.contains(&words) {
                    out.push(words);
                }
            }
        }
    }
    out
}

/// Most words Meilisearch joins into one n-gram (for multi-word synonyms and concatenation).
const MAX_NGRAM: usize = 3;

/// Give runs of consecutive query words what they match together: the synonyms of a
/// multi-word synonym key equal to the run (`new york` → `ny`), and the run's words written as
/// one (`note book` → `notebook`). Each word of the run gets those forms, so a document word
/// that matches one matches every word of the run.
fn add_ngram_forms(terms: &mut [Term], runs: &[(usize, usize)], settings: &Settings) {
    let keys: Vec<(Vec<String>, &Vec<String>)> = settings
        .synonyms
        .iter()
        .map(|(k, v)| (tokenize(k).into_iter().map(|t| t.word).collect::<Vec<_>>(), v))
        .filter(|(words, _)| words.len() > 1)
        .collect();
    for &(from, to) in runs {
        for start in from..to {
            for n in 2..=MAX_NGRAM.min(to - start) {
                let words: Vec<String> = terms[start..start + n]
                    .iter()
                    .filter_map(|t| match &t.kind {
                        TermKind::Word { text, .. } => Some(text.clone()),
                        TermKind::Phrase { .. } => None,
                    })
                    .collect();
                if words.len() != n {
                    continue;
                }
                let mut forms: Vec<Vec<String>> = vec![vec![words.concat()]];
                for (key, values) in &keys {
                    if *key == words {
                        for v in values.iter() {
                            let syn: Vec<String> =
                                tokenize(v).into_iter().map(|t| t.word).collect();
                            if !syn.is_empty() {
                                forms.push(syn);
                            }
                        }
                    }
                }
                for term in &mut terms[start..start + n] {
                    for form in &forms {
                        if !term.synonyms.contains(form) {
                            term.synonyms.push(form.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Parse `q` under the index's settings (stop words, synonyms, typo tolerance).
pub fn parse_query(q: &str, settings: &Settings) -> ParsedQuery {
    let stop = |w: &str| settings.stop_words.iter().any(|s| normalize(s) == w);
    let ends_open = q.chars().last().is_some_and(|c| c.is_alphanumeric());
    let mut parsed = ParsedQuery::default();
    let segs = segments(q);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let last_seg = segs.len().saturating_sub(1);
    for (si, seg) in segs.into_iter().enumerate() {
        let words: Vec<String> = tokenize(&seg.text).into_iter().map(|t| t.word).collect();
        if seg.negative {
            if !words.is_empty() {
                parsed.negative.push(words);
            }
            continue;
        }
        if seg.phrase {
            let kept: Vec<String> = words.into_iter().filter(|w| !stop(w)).collect();
            if !kept.is_empty() {
                let index = parsed.terms.len();
                parsed.terms.push(Term {
                    kind: TermKind::Phrase { words: kept },
                    synonyms: vec![],
                    split: None,
                    typo_words: None,
                    typo_tolerant: false,
                    index,
                });
            }
            continue;
        }
        let n = words.len();
        let all_stop = words.iter().all(|w| stop(w));
        let run_start = parsed.terms.len();
        for (wi, word) in words.into_iter().enumerate() {
            if stop(&word) && !all_stop {
                continue;
            }
            let is_last = si == last_seg && wi + 1 == n;
            let index = parsed.terms.len();
            let max_typos = allowed_typos(&word, &settings.typo_tolerance);
            let synonyms = synonyms_of(&word, settings);
            parsed.terms.push(Term {
                kind: TermKind::Word { prefix: is_last && ends_open, text: word, max_typos },
                synonyms,
                split: None,
                typo_words: None,
                typo_tolerant: settings.typo_tolerance.enabled,
                index,
            });
        }
        runs.push((run_start, parsed.terms.len()));
    }
    add_ngram_forms(&mut parsed.terms, &runs, settings);
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let mut s = Settings {
            stop_words: ["the", "a"].iter().map(|w| w.to_string()).collect(),
            ..Settings::default()
        };
        s.synonyms.insert("phone".into(), vec!["smartphone".into()]);
        s
    }

    #[test]
    fn words_phrases_negatives_and_prefix() {
        let p = parse_query("the wireless \"battery life\" -cheap phone", &settings());
        assert_eq!(p.terms.len(), 3);
        assert!(
            matches!(&p.terms[0].kind, TermKind::Word { text, prefix: false, max_typos: 1 } if text == "wireless")
        );
        assert!(
            matches!(&p.terms[1].kind, TermKind::Phrase { words } if words == &["battery", "life"])
        );
        assert!(matches!(&p.terms[2].kind, TermKind::Word { prefix: true, .. }));
        assert_eq!(p.terms[2].synonyms, vec![vec!["smartphone".to_string()]]);
        assert_eq!(p.negative, vec![vec!["cheap".to_string()]]);
        assert_eq!(p.word_count(), 4);
    }

    #[test]
    fn a_trailing_space_turns_prefix_search_off() {
        let p = parse_query("camera ", &settings());
        assert!(matches!(&p.terms[0].kind, TermKind::Word { prefix: false, .. }));
    }
}
