//! `write_quorum`: how many owners of a shard must accept a write before it is acknowledged.

use serde::{Deserialize, Serialize};

/// How many owners of each shard, inside one replica group, must accept a write for it to be
/// acknowledged. Owners that missed it get a durable repair record before the answer, so an
/// acknowledged write is never lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteQuorum {
    /// One owner (default): with `replication_factor: 2`, writes go on with an owner down.
    #[default]
    One,
    /// `floor(RF/2) + 1` owners.
    Majority,
    /// Every owner: a write is refused while any owner of one of its shards is down.
    All,
}

impl WriteQuorum {
    /// The number of owners that must accept, for `replication_factor` owners per group.
    pub fn owners_needed(self, replication_factor: usize) -> usize {
        match self {
            WriteQuorum::One => 1,
            WriteQuorum::Majority => replication_factor / 2 + 1,
            WriteQuorum::All => replication_factor.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_needed_per_level() {
        assert_eq!(WriteQuorum::One.owners_needed(2), 1);
        assert_eq!(WriteQuorum::Majority.owners_needed(2), 2);
        assert_eq!(WriteQuorum::Majority.owners_needed(3), 2);
        assert_eq!(WriteQuorum::All.owners_needed(3), 3);
        assert_eq!(WriteQuorum::default(), WriteQuorum::One);
    }
}
