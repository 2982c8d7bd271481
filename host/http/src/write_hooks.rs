//! A client's document write, once it reached quorum and its task was recorded: recorded in the
//! change feed (`cdc`, durable before the client's 202) and handed to the `on-write` hook on a
//! task of its own (the client's 202 does not wait for it). With neither, nothing is collected.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use miroir_store::TaskRecord;
use miroir_types::{Recorded, ShardId, WriteEvent};
use serde_json::Value;

use crate::AppState;

/// Whether a write's event is wanted by anyone (the change feed or an `on-write` hook).
fn wanted(state: &AppState) -> bool {
    state.change_feed().is_some() || state.hooks().hooks().on_write
}

/// The documents of an addition or update to carry in its event, when `cdc.include_documents`
/// asks for them (and change capture is on).
pub(crate) fn documents_if_wanted(
    state: &AppState,
    payload: &crate::documents::batch::Payload,
) -> Option<Value> {
    (state.change_feed().is_some() && state.config().cdc.include_documents).then(|| {
        let documents = (0..payload.len())
            .map(|i| serde_json::from_slice(payload.text(i)).unwrap_or(Value::Null))
            .collect();
        Value::Array(documents)
    })
}

/// The primary keys to report for a write of `keys`, when an event will carry them.
pub(crate) fn keys_if_wanted(state: &AppState, keys: &[String]) -> Option<Vec<String>> {
    wanted(state).then(|| keys.to_vec())
}

/// Records the write of `record` to `index` (touching `keys` in `shards`; `partial_update` for
/// documents sent with `PUT`) in the change feed, and delivers it to the `on-write` hook. Call it while holding the index's write lock (the
/// event takes its place in the index's order now); await what it returns after releasing the
/// lock and before answering (the event is then durable).
#[must_use = "await it before answering: the event is durable once it resolves"]
pub(crate) fn wrote(
    state: &AppState,
    index: &str,
    record: &TaskRecord,
    keys: impl FnOnce() -> Vec<String>,
    shards: &BTreeSet<ShardId>,
    partial_update: bool,
    documents: Option<Value>,
) -> Recorded {
    if !wanted(state) {
        return Box::pin(std::future::ready(()));
    }
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
        partial_update,
        documents,
    };
    if state.hooks().hooks().on_write {
        if let Some(port) = state.hooks_arc() {
            let event = event.clone();
            crate::after_response::spawn_delivery(
                "on-write",
                async move { port.on_write(event).await },
            );
        }
    }
    match state.change_feed() {
        Some(feed) => feed.record(event),
        None => Box::pin(std::future::ready(())),
    }
}
