//! Ranking rules: each gives a document a `(rank, max_rank)` from that document, the query and
//! the settings alone, never from other documents, so scores of one index split over several
//! nodes can be merged. The hit order is the rules' ranks compared in order (sort rules compare
//! values); `_rankingScore` folds the ranks like a mixed-radix number.
//!
//! Per rule, for `k` kept query terms (a phrase is one term) over `A` searchable attributes:
//! - `words`: rank = kept query words, max = query words;
//! - `typo`: max = 1 + the typos the kept terms allow, rank = max - typos used; the later rules
//!   only look at each term's occurrences with its fewest typos;
//! - `proximity`: per pair of consecutive terms a cost of `min(distance, 4) - 1` (a reversed
//!   pair is one further, different attributes cost 3), max = 3(k-1)+1;
//! - `attributeRank`: cost = sum of each term's best attribute index, max = (A-1)k+1;
//! - `wordPosition`: cost = sum of each term's best `|bucketed position - term index|`,
//!   bucket costs 0..=10, max = 10k+1;
//! - `exactness`: max = 3(k+1); an attribute equal to the query ranks 3(k+1), one starting with
//!   it 2(k+1), otherwise 1 + the terms found as the exact query word.

use serde_json::{json, Map, Value};

use crate::index::Document;
use crate::settings::Settings;

use super::matching::{DocMatch, Occurrence};
use super::sort::{self, SortCriterion, SortValue};
use super::terms::Term;

/// One ranking rule from the `rankingRules` setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Words,
    Typo,
    Proximity,
    AttributeRank,
    WordPosition,
    /// The legacy `attribute` rule: `attributeRank` then `wordPosition` as one rule.
    Attribute,
    Exactness,
    /// Where the query's `sort` applies.
    Sort,
    /// A custom `field:asc|desc` rule.
    Custom(SortCriterion),
}

/// The ranking rules of an index, in order.
pub fn rules(settings: &Settings) -> Vec<Rule> {
    settings
        .ranking_rules
        .iter()
        .filter_map(|r| match r.as_str() {
            "words" => Some(Rule::Words),
            "typo" => Some(Rule::Typo),
            "proximity" => Some(Rule::Proximity),
            "attributeRank" => Some(Rule::AttributeRank),
            "wordPosition" => Some(Rule::WordPosition),
            "attribute" => Some(Rule::Attribute),
            "exactness" => Some(Rule::Exactness),
            "sort" => Some(Rule::Sort),
            other => sort::parse_criterion(other).ok().map(Rule::Custom),
        })
        .collect()
}

/// A rule's verdict on one document, compared between documents in rule order.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// Higher ranks first.
    Rank(u64),
    /// A sort value and its direction.
    Value(SortValue, bool),
}

/// A document's ranking: keys for ordering, score details and the global score.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub keys: Vec<Key>,
    pub details: Map<String, Value>,
    pub score: f64,
}

/// What keyword rules need about the query and one document.
pub struct Keywords<'a> {
    pub terms: &'a [Term],
    pub doc: &'a DocMatch,
    /// Indices of the terms kept by the matching strategy, in query order.
    pub kept: &'a [usize],
    /// Query words in total (phrases count their words).
    pub words_total: usize,
    /// Number of searchable attributes.
    pub attributes: usize,
}

/// Folds `(rank, max)` pairs into Meilisearch's global score.
#[derive(Debug, Clone, Copy)]
struct Score {
    rank: u128,
    max: u128,
}

impl Score {
    fn push(&mut self, rank: u64, max: u64) {
        self.rank = (self.rank - 1) * u128::from(max) + u128::from(rank);
        self.max *= u128::from(max);
    }

    fn value(self) -> f64 {
        self.rank as f64 / self.max as f64
    }
}

fn local(rank: u64, max: u64) -> f64 {
    rank as f64 / max as f64
}

/// A word position as Meilisearch indexes it: exact below 16, then in coarser buckets.
pub fn bucketed_position(pos: u32) -> u32 {
    match pos {
        0..=15 => pos,
        16..=23 => 24,
        _ => {
            let bits = 32 - pos.leading_zeros();
            (1u32 << bits.min(31)) - 1
        }
    }
}

/// Cost of a distance between where a word is found and where the query puts it.
pub fn distance_cost(distance: u32) -> u64 {
    match distance {
        0 => 0,
        1 => 1,
        2..=4 => 2,
        5..=7 => 3,
        8..=11 => 4,
        12..=16 => 5,
        17..=24 => 6,
        25..=64 => 7,
        65..=256 => 8,
        257..=1024 => 9,
        _ => 10,
    }
}

/// Cost of a word found at position `pos` for query term `i`: the distance between the
/// word's bucketed position and the term's index (recorded: a word at position 16 for the
/// second term costs 6, one at 13 costs 5).
pub fn word_position_cost(pos: u32, i: u32) -> u64 {
    distance_cost(bucketed_position(pos).abs_diff(i))
}

/// Cost of the closest pair of occurrences of two consecutive terms.
fn pair_cost(a: &[&Occurrence], b: &[&Occurrence]) -> u64 {
    let mut best = 3u64;
    for x in a {
        for y in b.iter().filter(|y| y.field == x.field) {
            let distance = if y.pos > x.end {
                y.pos - x.end
            } else if y.end < x.pos {
                x.pos - y.end + 1
            } else {
                1
            };
            best = best.min(u64::from(distance.min(4)) - 1);
        }
    }
    best
}

/// Accumulates one document's keys, details and score while the rules run.
struct Acc {
    keys: Vec<Key>,
    details: Map<String, Value>,
    score: Score,
    order: usize,
}

impl Acc {
    fn push_rank(&mut self, name: &str, rank: u64, max: u64, extra: Value) {
        self.keys.push(Key::Rank(rank));
        self.score.push(rank, max);
        let mut entry = Map::new();
        entry.insert("order".into(), json!(self.order));
        if let Value::Object(extra) = extra {
            entry.extend(extra);
        }
        entry.insert("score".into(), json!(local(rank, max)));
        self.details.insert(name.to_string(), Value::Object(entry));
        self.order += 1;
    }
}

/// Evaluates every rule for one document. `keywords` is `None` for a placeholder search, where
/// only sort rules apply.
pub fn rank(
    doc: &Document,
    rules: &[Rule],
    sort: &[SortCriterion],
    keywords: Option<&Keywords<'_>>,
) -> Ranked {
    let mut acc =
        Acc { keys: Vec::new(), details: Map::new(), score: Score { rank: 1, max: 1 }, order: 0 };
    // After `typo`, the rules only see each term's occurrences with its fewest typos.
    let mut typo_filtered = false;
    for rule in rules {
        match rule {
            Rule::Sort | Rule::Custom(_) => {
                let criteria: Vec<&SortCriterion> = match rule {
                    Rule::Custom(c) => vec![c],
                    _ => sort.iter().collect(),
                };
                for c in criteria {
                    acc.keys.push(Key::Value(sort::sort_value(doc, c), sort::is_asc(c)));
                    acc.details.insert(sort::details_key(c), sort::details(doc, c, acc.order));
                    acc.order += 1;
                }
            }
            _ => {
                if let Some(kw) = keywords {
                    keyword_rule(&mut acc, rule, kw, typo_filtered);
                    typo_filtered |= *rule == Rule::Typo;
                }
            }
        }
    }
    Ranked { keys: acc.keys, details: acc.details, score: acc.score.value() }
}

/// The occurrences of term `t` the current rule may use.
fn usable<'d>(kw: &Keywords<'d>, t: usize, typo_filtered: bool) -> Vec<&'d Occurrence> {
    let all = &kw.doc.occurrences[t];
    if typo_filtered {
        let best = all.iter().map(|o| o.typos).min().unwrap_or(0);
        all.iter().filter(|o| o.typos == best).collect()
    } else {
        all.iter().collect()
    }
}

fn keyword_rule(acc: &mut Acc, rule: &Rule, kw: &Keywords<'_>, typo_filtered: bool) {
    let k = kw.kept.len() as u64;
    let occ = |t: usize| usable(kw, t, typo_filtered);
    match rule {
        Rule::Words => {
            let matched: usize = kw.kept.iter().map(|&t| kw.terms[t].word_count()).sum();
            let extra = json!({"matchingWords": matched, "maxMatchingWords": kw.words_total});
            acc.push_rank("words", matched as u64, kw.words_total as u64, extra);
        }
        Rule::Typo => {
            let max_typos: u64 = kw.kept.iter().map(|&t| u64::from(kw.terms[t].max_typos())).sum();
            let used: u64 = kw
                .kept
                .iter()
                .map(|&t| {
                    u64::from(kw.doc.occurrences[t].iter().map(|o| o.typos).min().unwrap_or(0))
                })
                .sum();
            let used = used.min(max_typos);
            let extra = json!({"typoCount": used, "maxTypoCount": max_typos});
            acc.push_rank("typo", max_typos + 1 - used, max_typos + 1, extra);
        }
        Rule::Proximity => {
            let cost: u64 = kw.kept.windows(2).map(|p| pair_cost(&occ(p[0]), &occ(p[1]))).sum();
            let max = 3 * k.saturating_sub(1) + 1;
            acc.push_rank("proximity", max - cost, max, json!({}));
        }
        Rule::AttributeRank | Rule::WordPosition | Rule::Attribute => {
            let a = kw.attributes.max(1) as u64;
            let attr_cost: u64 = kw
                .kept
                .iter()
                .map(|&t| {
                    occ(t).iter().map(|o| (o.weight as u64).min(a - 1)).min().unwrap_or(a - 1)
                })
                .sum();
            let attr_max = (a - 1) * k + 1;
            let pos_cost: u64 = kw
                .kept
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let i = i as u32;
                    occ(t).iter().map(|o| word_position_cost(o.pos, i)).min().unwrap_or(10)
                })
                .sum();
            let pos_max = 10 * k + 1;
            match rule {
                Rule::AttributeRank => {
                    acc.push_rank("attributeRank", attr_max - attr_cost, attr_max, json!({}))
                }
                Rule::WordPosition => {
                    acc.push_rank("wordPosition", pos_max - pos_cost, pos_max, json!({}))
                }
                _ => {
                    let extra = json!({
                        "attributeRankingOrderScore": local(attr_max - attr_cost, attr_max),
                        "queryWordDistanceScore": local(pos_max - pos_cost, pos_max),
                    });
                    let r = (attr_max - attr_cost - 1) * pos_max + (pos_max - pos_cost);
                    acc.push_rank("attribute", r, attr_max * pos_max, extra);
                }
            }
        }
        Rule::Exactness => {
            let (r, extra) = exactness(kw);
            acc.push_rank("exactness", r, 3 * (k + 1), extra);
        }
        Rule::Sort | Rule::Custom(_) => {}
    }
}

/// The exactness rank and its details.
fn exactness(kw: &Keywords<'_>) -> (u64, Value) {
    let k = kw.kept.len() as u64;
    let query_words: Vec<&str> = kw.kept.iter().flat_map(|&t| kw.terms[t].words()).collect();
    let mut best = 1u64;
    for value in &kw.doc.values {
        // The attribute must start with the query, stop words included.
        if value.tokens.first().is_none_or(|t| t.pos != 0) {
            continue;
        }
        let words: Vec<&str> = value.tokens.iter().map(|t| t.word.as_str()).collect();
        if words == query_words {
            best = 3;
            break;
        }
        if words.len() > query_words.len() && words.starts_with(&query_words) {
            best = best.max(2);
        }
    }
    match best {
        3 => (3 * (k + 1), json!({"matchType": "exactMatch"})),
        2 => (2 * (k + 1), json!({"matchType": "matchesStart"})),
        _ => {
            let exact =
                kw.kept.iter().filter(|&&t| kw.doc.occurrences[t].iter().any(|o| o.exact)).count();
            let extra =
                json!({"matchType": "noExactMatch", "matchingWords": exact, "maxMatchingWords": k});
            (exact as u64 + 1, extra)
        }
    }
}

/// Compare two rankings: rule by rule, higher ranks and earlier sort values first.
pub fn compare(a: &Ranked, b: &Ranked) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for (x, y) in a.keys.iter().zip(&b.keys) {
        let ord = match (x, y) {
            (Key::Rank(x), Key::Rank(y)) => y.cmp(x),
            (Key::Value(x, asc), Key::Value(y, _)) => sort::compare(x, y, *asc),
            _ => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_costs_follow_meilisearch_buckets() {
        let got: Vec<u64> =
            [0, 1, 13, 15, 16, 23, 24, 46, 70].iter().map(|&d| word_position_cost(d, 0)).collect();
        assert_eq!(got, vec![0, 1, 5, 5, 6, 6, 7, 7, 8]);
        // The position is bucketed before the term's index is taken off (search.q.7 black:
        // "backup" at 16 for the second term costs 6, at 13 it costs 5).
        assert_eq!(word_position_cost(16, 1), 6);
        assert_eq!(word_position_cost(13, 1), 5);
        assert_eq!(word_position_cost(3, 1), 2);
    }

    #[test]
    fn global_score_is_a_mixed_radix_fold() {
        // The recorded "premium watch" hit: words 2/2, typo 3/3, proximity 4/4, attributeRank
        // 7/7, wordPosition 19/21, exactness 3/9.
        let mut s = Score { rank: 1, max: 1 };
        for (r, m) in [(2, 2), (3, 3), (4, 4), (7, 7), (19, 21), (3, 9)] {
            s.push(r, m);
        }
        assert_eq!(s.value(), 0.999244142101285);
    }
}
