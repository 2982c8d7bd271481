//! What Meilisearch knows about the whole index when it expands a query word: its vocabulary
//! (typo forms are taken in word order and capped, as Meilisearch caps derivations) and which
//! word pairs occur side by side (to cut a query word in two). This changes which documents
//! match, never the score of a document that matches.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::index::Index;

use super::matching::Matcher;
use super::terms::{Term, TermKind};
use super::typo::typos;

/// Most one-typo and two-typo forms a query word expands to (measured: a one-typo word
/// reached 150 index words, the first 150 in word order).
const MAX_ONE_TYPO_WORDS: usize = 150;
const MAX_TWO_TYPO_WORDS: usize = 50;

/// The index's searchable words and adjacent word pairs (stop words left out).
pub struct Corpus {
    words: BTreeSet<String>,
    pairs: HashMap<(String, String), usize>,
}

impl Corpus {
    /// Read every document's searchable attributes.
    pub fn new(index: &Index, fields: &[(usize, String)], stop_words: HashSet<String>) -> Self {
        let matcher = Matcher::new(&[], stop_words);
        let mut words = BTreeSet::new();
        let mut pairs: HashMap<(String, String), usize> = HashMap::new();
        for doc in index.documents.values() {
            let mut seen_pairs: HashSet<(String, String)> = HashSet::new();
            for value in matcher.values(doc, fields) {
                for (i, token) in value.tokens.iter().enumerate() {
                    if !words.contains(&token.word) {
                        words.insert(token.word.clone());
                    }
                    if let Some(next) = value.tokens.get(i + 1) {
                        if next.pos == token.pos + 1 {
                            seen_pairs.insert((token.word.clone(), next.word.clone()));
                        }
                    }
                }
            }
            for pair in seen_pairs {
                *pairs.entry(pair).or_insert(0) += 1;
            }
        }
        Self { words, pairs }
    }

    /// Fix each word term's typo forms and its best split under this vocabulary.
    pub fn refine(&self, terms: &mut [Term]) {
        for term in terms.iter_mut() {
            let TermKind::Word { text, prefix, max_typos } = &term.kind else { continue };
            if *max_typos > 0 {
                let mut found: HashMap<String, u8> = HashMap::new();
                let (mut one, mut two) = (0usize, 0usize);
                for word in &self.words {
                    if word == text || (*prefix && word.starts_with(text.as_str())) {
                        continue;
                    }
                    match typos(text, word, *prefix, *max_typos) {
                        Some(1) if one < MAX_ONE_TYPO_WORDS => {
                            one += 1;
                            found.insert(word.clone(), 1);
                        }
                        Some(2) if two < MAX_TWO_TYPO_WORDS => {
                            two += 1;
                            found.insert(word.clone(), 2);
                        }
                        _ => {}
                    }
                }
                term.typo_words = Some(found);
            }
            let chars: Vec<char> = text.chars().collect();
            let best = (1..chars.len())
                .map(|at| {
                    let left: String = chars[..at].iter().collect();
                    let right: String = chars[at..].iter().collect();
                    let freq = self.pairs.get(&(left.clone(), right.clone())).copied().unwrap_or(0);
                    (freq, left, right)
                })
                .filter(|(freq, _, _)| *freq > 0)
                .max_by_key(|(freq, _, _)| *freq);
            term.split = best.map(|(_, l, r)| vec![l, r]);
        }
    }
}
