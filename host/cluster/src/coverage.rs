//! What a read answers about the shards no owner answered for: the one rule every scattered
//! read (search, facet search, similar, federated search, browse, get by id) follows. With the
//! `partial` policy the answer is served with `X-Miroir-Degraded: shards=...`; with `error` it
//! is refused (`miroir_shard_unavailable`). A read that dropped shards never answers a silent
//! 200.

use std::collections::BTreeSet;

use miroir_types::ShardId;

/// The header that lists the shards a partial answer lacks.
pub const DEGRADED_HEADER: &str = "x-miroir-degraded";

/// A read's coverage of the index's shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// Every shard answered.
    Complete,
    /// Some shards did not answer and the answer is served anyway: the value of
    /// [`DEGRADED_HEADER`] (`shards=1,4`).
    Partial(String),
    /// Some shards (this many) did not answer and partial answers are refused.
    Unavailable(usize),
}

impl Coverage {
    /// The coverage of a read that lacks `missing`; `refuse_partial` when the unavailable-shard
    /// policy is `error`.
    pub fn of(missing: &BTreeSet<ShardId>, refuse_partial: bool) -> Self {
        if missing.is_empty() {
            return Coverage::Complete;
        }
        if refuse_partial {
            return Coverage::Unavailable(missing.len());
        }
        let list: Vec<String> = missing.iter().map(|s| s.get().to_string()).collect();
        Coverage::Partial(format!("shards={}", list.join(",")))
    }

    /// The [`DEGRADED_HEADER`] value, for a partial answer.
    pub fn degraded(&self) -> Option<&str> {
        match self {
            Coverage::Partial(value) => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_shards_are_listed_or_refused_never_silent() {
        let none = BTreeSet::new();
        assert_eq!(Coverage::of(&none, true), Coverage::Complete);
        let missing: BTreeSet<ShardId> = [ShardId::new(4), ShardId::new(1)].into();
        let partial = Coverage::of(&missing, false);
        assert_eq!(partial.degraded(), Some("shards=1,4"));
        assert_eq!(Coverage::of(&missing, true), Coverage::Unavailable(2));
        assert_eq!(Coverage::of(&missing, true).degraded(), None);
    }
}
