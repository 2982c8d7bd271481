//! The change-feed port: how the write path hands a client write to change data capture, and how
//! the `GET /_miroir/changes` route reads it back, without knowing what stores or ships events.
//!
//! `miroir-cdc` implements it (a durable per-index log with webhook and NATS sinks); the gateway
//! holds none when `cdc.enabled` is off, and then collects nothing for it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::WriteEvent;

/// Events of one index after a cursor, as the long-poll route answers them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangePage {
    /// The events in cursor order, each a JSON object carrying its own `cursor`.
    pub events: Vec<Value>,
    /// The cursor to ask from next: the last event's, or the one asked from when none came.
    pub cursor: u64,
    /// `since + 1` when nothing was lost after the cursor asked from; otherwise the oldest cursor
    /// still held: the events between were dropped (the log is kept within
    /// `cdc.buffer.store_events`).
    pub oldest: u64,
    /// The last cursor given in the index so far (`0` before any event): a consumer starting
    /// from a snapshot notes it first, then reads from it once the snapshot is taken.
    pub head: u64,
}

/// Why the change feed could not answer a read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeFeedError {
    /// The feed's storage failed.
    #[error("change feed storage: {0}")]
    Storage(String),
}

/// Resolves once a recorded event is durable, or was dropped and counted.
pub type Recorded = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The change feed. Both methods are called by the HTTP layer only when one was installed.
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Records a client write that reached quorum. The event takes its place in the index's
    /// order when this is called (the write path calls it while it still holds the index's write
    /// lock); the returned future resolves once the event is durable (the write path awaits it
    /// after releasing the lock and before answering, so a client's acknowledged write has its
    /// event even if the gateway is killed right after), or once it was dropped and counted
    /// (buffer full, storage down). It never fails the write.
    fn record(&self, event: WriteEvent) -> Recorded;

    /// The stored form of `event`, for a task store that appends it to the change log in the
    /// transaction recording the write's task ([`ChangeFeed::stored_with_task`] then follows
    /// instead of [`ChangeFeed::record`]); `None` when this feed appends events on its own.
    fn serialize(&self, event: &WriteEvent) -> Option<Vec<u8>> {
        let _ = event;
        None
    }

    /// `event` was appended by the task store with its task, at `position` of its index's log
    /// (durable already): kept and announced as an event the feed appended itself. Called, like
    /// [`ChangeFeed::record`], while the write path holds the index's write lock.
    fn stored_with_task(&self, event: WriteEvent, position: u64) {
        let _ = (event, position);
    }

    /// The events of `index` after `since`, at most `limit`. When there is none yet, waits up to
    /// `wait` for one before answering an empty page.
    async fn changes(
        &self,
        index: &str,
        since: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<ChangePage, ChangeFeedError>;
}
