//! Counts of what change capture recorded, delivered and dropped.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by the feed and its sinks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub recorded: AtomicU64,
    pub dropped_buffer_full: AtomicU64,
    pub dropped_store_failed: AtomicU64,
    pub trimmed: AtomicU64,
}

/// One sink's counters.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    pub delivered: AtomicU64,
    pub failures: AtomicU64,
    pub dropped: AtomicU64,
}

/// What change capture did since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdcStats {
    /// Events appended to the log.
    pub recorded: u64,
    /// Events dropped because `buffer.memory_events` events were already waiting to be stored.
    pub dropped_buffer_full: u64,
    /// Events dropped because the task store refused them (after retries).
    pub dropped_store_failed: u64,
    /// Events removed from the log to keep it within `buffer.store_events`.
    pub trimmed: u64,
    /// Per sink (`webhook`, `nats`).
    pub sinks: Vec<SinkStats>,
}

/// One sink's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// `webhook` or `nats`.
    pub sink: &'static str,
    /// Events the sink took (a retried batch counts once).
    pub delivered: u64,
    /// Failed attempts (each is retried).
    pub failures: u64,
    /// Events trimmed from the log before this sink delivered them.
    pub dropped: u64,
}

impl SinkCounters {
    pub(crate) fn snapshot(&self, sink: &'static str) -> SinkStats {
        SinkStats {
            sink,
            delivered: self.delivered.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}
