//! A client's document write, once it reached quorum and its task was recorded: recorded in the
//! change feed (`cdc`, durable before the client's 202; with a task store that can, in the same
//! transaction as the task) and handed to the `on-write` hook on a
//! task of its own (the client's 202 does not wait for it). With neither, nothing is collected.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use miroir_store::{ChangeEntry, TaskRecord};
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

/// A write's change event, prepared before its task is recorded (the task's uid completes it):
/// see [`change`], [`Change::entry`] and [`wrote`].
pub(crate) struct Change {
    /// The event, with `event_id`, `task_uid` and `operation` still to be set from the record.
    event: WriteEvent,
}

impl Change {
    /// The event of the write recorded as `record`.
    fn of(&self, record: &TaskRecord) -> WriteEvent {
        let mut event = self.event.clone();
        event.event_id = format!("{}:{}", event.index, record.uid);
        event.task_uid = record.uid;
        event.operation = record.kind.clone();
        event
    }

    /// What the task store appends to the change log in the transaction recording the task,
    /// when the change feed stores its events that way (see
    /// [`miroir_store::TaskLog::create_task_with_change`]).
    pub(crate) fn entry(self: &Arc<Self>, state: &AppState) -> Option<ChangeEntry> {
        let feed = Arc::clone(state.change_feed()?);
        feed.serialize(&self.bare())?;
        let change = Arc::clone(self);
        Some(Arc::new(move |record: &TaskRecord| {
            let event = change.of(record);
            (event.index.clone(), feed.serialize(&event).unwrap_or_default())
        }))
    }

    /// The event's scalar fields, without the documents and keys.
    fn bare(&self) -> WriteEvent {
        WriteEvent {
            event_id: String::new(),
            task_uid: 0,
            index: self.event.index.clone(),
            operation: String::new(),
            primary_keys: Vec::new(),
            shards: Vec::new(),
            timestamp_ms: self.event.timestamp_ms,
            partial_update: self.event.partial_update,
            documents: None,
        }
    }
}

/// The change event of a write to `index` (touching `keys` in `shards`; `partial_update` for
/// documents sent with `PUT`), when anyone wants it (the change feed or an `on-write` hook).
/// Call it while holding the index's write lock, before recording the task; hand the task's
/// record to [`wrote`].
pub(crate) fn change(
    state: &AppState,
    index: &str,
    keys: impl FnOnce() -> Vec<String>,
    shards: &BTreeSet<ShardId>,
    partial_update: bool,
    documents: Option<Value>,
) -> Option<Arc<Change>> {
    if !wanted(state) {
        return None;
    }
    let timestamp_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let event = WriteEvent {
        event_id: String::new(),
        task_uid: 0,
        index: index.to_owned(),
        operation: String::new(),
        primary_keys: keys(),
        shards: shards.iter().map(|s| s.get()).collect(),
        timestamp_ms,
        partial_update,
        documents,
    };
    Some(Arc::new(Change { event }))
}

/// The entry [`enqueue_with_change`](crate::tasks::record::enqueue_with_change) appends with
/// the task, for `change` when there is one.
pub(crate) fn entry(state: &AppState, change: Option<&Arc<Change>>) -> Option<ChangeEntry> {
    change.and_then(|change| change.entry(state))
}

/// Records the write of `record` (its [`change`]) in the change feed, and delivers it to the
/// `on-write` hook. `position` is where the task store appended the event with the task, when
/// it did ([`entry`]); otherwise the feed appends it now. Call it while holding the index's
/// write lock (the event takes its place in the index's order now); await what it returns after
/// releasing the lock and before answering (the event is then durable).
#[must_use = "await it before answering: the event is durable once it resolves"]
pub(crate) fn wrote(
    state: &AppState,
    record: &TaskRecord,
    change: Option<Arc<Change>>,
    position: Option<u64>,
) -> Recorded {
    let Some(change) = change else {
        return Box::pin(std::future::ready(()));
    };
    let event = change.of(record);
    if state.hooks().hooks().on_write {
        if let Some(port) = state.hooks_arc() {
            let event = event.clone();
            crate::after_response::spawn_delivery(
                "on-write",
                async move { port.on_write(event).await },
            );
        }
    }
    match (state.change_feed(), position) {
        (Some(feed), Some(position)) => {
            feed.stored_with_task(event, position);
            Box::pin(std::future::ready(()))
        }
        (Some(feed), None) => feed.record(event),
        (None, _) => Box::pin(std::future::ready(())),
    }
}
