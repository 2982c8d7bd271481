//! Typo counting as Meilisearch does it: Damerau-Levenshtein distance (a swap of two adjacent
//! letters is one typo), a typo on the first letter counts as two, and the last query word may
//! match the start of a longer word (prefix search) with typos in that start.

use crate::settings::TypoTolerance;

/// How many typos a query word of this form allows under the index's typo settings.
pub fn allowed_typos(word: &str, settings: &TypoTolerance) -> u8 {
    if !settings.enabled || settings.disable_on_words.contains(word) {
        return 0;
    }
    if settings.disable_on_numbers && word.chars().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    let len = word.chars().count();
    let sizes = &settings.min_word_size_for_typos;
    if len >= usize::from(sizes.two_typos) {
        2
    } else if len >= usize::from(sizes.one_typo) {
        1
    } else {
        0
    }
}

/// The typos between query word `query` and document word `word` when at most `max` are
/// allowed, or `None` when they are further apart. With `prefix`, `word` may be longer: only
/// its best-matching start counts.
pub fn typos(query: &str, word: &str, prefix: bool, max: u8) -> Option<u8> {
    if max == 0 {
        return None;
    }
    let q: Vec<char> = query.chars().collect();
    let w: Vec<char> = word.chars().collect();
    if q.is_empty() || w.is_empty() {
        return None;
    }
    let limit = usize::from(max);
    if !prefix && q.len().abs_diff(w.len()) > limit {
        return None;
    }
    let cols = if prefix { w.len().min(q.len() + limit) } else { w.len() };
    let d = osa_distance(&q, &w[..cols], prefix);
    let first_penalty = usize::from(q[0] != w[0]);
    let total = d + first_penalty;
    if d > 0 && total <= limit {
        u8::try_from(total).ok()
    } else {
        None
    }
}

/// Optimal-string-alignment distance between `q` and `w`; with `prefix`, the distance between
/// `q` and the closest start of `w`.
fn osa_distance(q: &[char], w: &[char], prefix: bool) -> usize {
    let n = w.len();
    let mut prev2: Vec<usize> = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur: Vec<usize> = vec![0; n + 1];
    for i in 1..=q.len() {
        cur[0] = i;
        for j in 1..=n {
            let cost = usize::from(q[i - 1] != w[j - 1]);
            let mut best = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && q[i - 1] == w[j - 2] && q[i - 2] == w[j - 1] {
                best = best.min(prev2[j - 2] + 1);
            }
            cur[j] = best;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    if prefix {
        prev.iter().copied().min().unwrap_or(usize::MAX)
    } else {
        prev[n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_typo_words_match_insertions_deletions_swaps() {
        assert_eq!(typos("wireles", "wireless", false, 1), Some(1));
        assert_eq!(typos("headphnes", "headphones", false, 2), Some(1));
        assert_eq!(typos("wirelses", "wireless", false, 1), Some(1));
        assert_eq!(typos("camera", "camera", false, 1), None, "exact is not a typo");
    }

    #[test]
    fn a_first_letter_typo_counts_twice() {
        assert_eq!(typos("port", "nort", false, 1), None);
        assert_eq!(typos("xamera", "camera", false, 2), Some(2));
    }

    #[test]
    fn prefix_typos_look_at_the_start_of_longer_words() {
        assert_eq!(typos("black", "backup", true, 1), Some(1));
        assert_eq!(typos("black", "backup", false, 1), None);
    }
}
