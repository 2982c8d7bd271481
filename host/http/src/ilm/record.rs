//! What the task store keeps of one policy: its backing indexes, in order, and when each was
//! created, rolled over and deleted. Saved as the versioned record `ilm-<pattern>` (fenced: only
//! the leader writes it), so a new leader continues where the last one stopped.

use miroir_store::Fence;
use serde::{Deserialize, Serialize};

use crate::error::HttpResult;
use crate::AppState;

/// One backing index of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// Its number: `<pattern>-NNNNNN`.
    pub number: u32,
    /// Its uid.
    pub index: String,
    /// When it became the index written to (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When the next one replaced it; none while it is written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_at_ms: Option<u64>,
    /// When retention deleted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at_ms: Option<u64>,
    /// Its settings version when the leader last aligned the settings: a newer one means
    /// settings were written to it since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_version: Option<u64>,
}

/// A policy's backing indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The policy's pattern.
    pub pattern: String,
    /// Every generation so far, oldest first; the last one is written to.
    pub generations: Vec<Generation>,
    /// The stored version (0: never saved).
    #[serde(skip)]
    pub version: u64,
}

/// The uid of `pattern`'s backing index number `number`.
pub fn backing_index(pattern: &str, number: u32) -> String {
    format!("{pattern}-{number:06}")
}

impl Record {
    /// A policy that has not started: its first backing index is the one to write to.
    pub fn first(pattern: &str, now_ms: u64) -> Self {
        Record {
            pattern: pattern.to_owned(),
            generations: vec![Generation {
                number: 1,
                index: backing_index(pattern, 1),
                created_at_ms: now_ms,
                rolled_at_ms: None,
                deleted_at_ms: None,
                settings_version: None,
            }],
            version: 0,
        }
    }

    /// The backing index written to now.
    pub fn current(&self) -> &Generation {
        self.generations.last().expect("a record has a generation")
    }

    /// The backing indexes not deleted, oldest first (the current one last).
    pub fn live(&self) -> impl Iterator<Item = &Generation> {
        self.generations.iter().filter(|g| g.deleted_at_ms.is_none())
    }

    /// The record with a new current generation, the old one marked rolled over at `now_ms`.
    pub fn rolled_over(&self, now_ms: u64) -> Record {
        let mut next = self.clone();
        let number = self.current().number + 1;
        if let Some(last) = next.generations.last_mut() {
            last.rolled_at_ms = Some(now_ms);
        }
        next.generations.push(Generation {
            number,
            index: backing_index(&self.pattern, number),
            created_at_ms: now_ms,
            rolled_at_ms: None,
            deleted_at_ms: None,
            settings_version: None,
        });
        next
    }
}

fn key(pattern: &str) -> String {
    format!("ilm-{pattern}")
}

/// The stored record of `pattern`, if any.
pub async fn load(state: &AppState, pattern: &str) -> HttpResult<Option<Record>> {
    let Some(stored) = state.store().get_rebalance(&key(pattern)).await? else { return Ok(None) };
    let mut record: Record = serde_json::from_value(stored.doc)
        .map_err(|e| crate::error::HttpError::Internal(format!("ilm record unreadable: {e}")))?;
    record.version = stored.version;
    Ok(Some(record))
}

/// Saves `record` over the version it was read at, under the leader's `fence`; the saved copy.
pub async fn save(state: &AppState, record: &Record, fence: &Fence) -> HttpResult<Record> {
    let doc = serde_json::to_value(record).expect("a record serializes");
    let version = state
        .store()
        .save_rebalance(&key(&record.pattern), record.version, &doc, Some(fence))
        .await?;
    Ok(Record { version, ..record.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollover_starts_the_next_number_and_closes_the_current() {
        let record = Record::first("logs", 1_000);
        assert_eq!(record.current().index, "logs-000001");
        let next = record.rolled_over(5_000);
        assert_eq!(next.current().index, "logs-000002");
        assert_eq!(next.generations[0].rolled_at_ms, Some(5_000));
        assert_eq!(next.live().count(), 2);
    }
}
