//! The `on-write` hook: a client's document write, once it reached quorum and its task was
//! recorded, handed to the hook port on a task of its own (the client's 202 does not wait).
//! Without an `on-write` hook nothing is collected.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use miroir_store::TaskRecord;
use miroir_types::{ShardId, WriteEvent};

use crate::AppState;

/// The primary keys to report for a write of `keys`, when an `on-write` hook will see them.
pub(crate) fn keys_if_wanted(state: &AppState, keys: &[String]) -> Option<Vec<String>> {
    state.hooks().hooks().on_write.then(|| keys.to_vec())
}

/// Delivers the write of `record` to `index` (touching `keys` in `shards`) to the hook.
pub(crate) fn wrote(
    state: &AppState,
    index: &str,
    record: &TaskRecord,
    keys: impl FnOnce() -> Vec<String>,
    shards: &BTreeSet<ShardId>,
) {
    if !state.hooks().hooks().on_write {
        return;
    }
    let Some(port) = state.hooks_arc() else { return };
    let timestamp_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let event = WriteEvent {
        event_id: format!("{index}:{}", record.uid),
        task_uid: record.uid,
        index: index.to_owned(),
        operation: record.kind.clone(),
        primary_keys: keys(),
        shards: shards.iter().map(|s| s.get()).collect(),
        timestamp_ms,
    };
    crate::after_response::spawn_delivery("on-write", async move { port.on_write(event).await });
}
