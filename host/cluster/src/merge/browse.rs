//! Browsing documents over shards with one global offset and limit.
//!
//! One node lists an index's documents in its internal order, which no other server can
//! reproduce across shards. The order Miroir serves is *shard-major*: every document of shard 0
//! in its node's order, then shard 1, and so on. Each shard's order is the same on every replica
//! (replicas receive the same writes in the same order), so the pages are the same whichever
//! replicas answer, and consecutive pages cover every document exactly once.

/// The part of one shard a global page takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSlice {
    /// The position of the shard in the list of totals given to [`browse_plan`].
    pub position: usize,
    /// The offset inside that shard's documents.
    pub offset: usize,
    /// How many of that shard's documents the page takes.
    pub limit: usize,
}

/// The slices of shards that make the page `offset`/`limit` of the shard-major order, given each
/// shard's number of matching documents (in shard order). Shards the page does not reach are
/// left out; the slices are in shard order.
pub fn browse_plan(totals: &[u64], offset: usize, limit: usize) -> Vec<ShardSlice> {
    let mut plan = Vec::new();
    let end = offset.saturating_add(limit);
    let mut start_of_shard = 0usize;
    for (position, total) in totals.iter().enumerate() {
        let total = usize::try_from(*total).unwrap_or(usize::MAX);
        let end_of_shard = start_of_shard.saturating_add(total);
        let from = offset.max(start_of_shard);
        let to = end.min(end_of_shard);
        if from < to {
            plan.push(ShardSlice { position, offset: from - start_of_shard, limit: to - from });
        }
        if end_of_shard >= end {
            break;
        }
        start_of_shard = end_of_shard;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(totals: &[u64], offset: usize, limit: usize) -> Vec<(usize, usize, usize)> {
        browse_plan(totals, offset, limit).iter().map(|s| (s.position, s.offset, s.limit)).collect()
    }

    #[test]
    fn a_page_inside_one_shard_asks_that_shard_only() {
        assert_eq!(slices(&[5, 5, 5], 6, 3), vec![(1, 1, 3)]);
        assert_eq!(slices(&[5, 5, 5], 0, 5), vec![(0, 0, 5)]);
    }

    #[test]
    fn a_page_across_shards_takes_the_end_of_one_and_the_start_of_the_next() {
        assert_eq!(slices(&[5, 0, 5, 5], 3, 9), vec![(0, 3, 2), (2, 0, 5), (3, 0, 2)]);
    }

    #[test]
    fn a_page_past_the_end_is_empty_and_empty_shards_are_skipped() {
        assert_eq!(slices(&[2, 3], 5, 10), vec![]);
        assert_eq!(slices(&[0, 0, 4], 0, 20), vec![(2, 0, 4)]);
        assert_eq!(slices(&[4, 4], 1, 0), vec![]);
    }

    #[test]
    fn consecutive_pages_cover_every_document_once() {
        let totals = [7u64, 0, 3, 11, 1, 0, 6];
        let all: u64 = totals.iter().sum();
        let mut seen = Vec::new();
        for page in 0..10 {
            for s in browse_plan(&totals, page * 4, 4) {
                seen.extend((s.offset..s.offset + s.limit).map(|i| (s.position, i)));
            }
        }
        let mut expected = Vec::new();
        for (position, total) in totals.iter().enumerate() {
            expected.extend((0..*total as usize).map(|i| (position, i)));
        }
        assert_eq!(seen.len() as u64, all);
        assert_eq!(seen, expected);
    }
}
