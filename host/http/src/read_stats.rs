//! Counters of the search read path, for the metrics the binary exports: node requests sent,
//! node failures (by node), replacement requests, partial answers and refused ones.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use miroir_types::NodeId;

/// What the read path did since start. Every count only grows.
#[derive(Debug, Default)]
pub struct ReadStats {
    node_requests: AtomicU64,
    replacements: AtomicU64,
    partial_answers: AtomicU64,
    unavailable_errors: AtomicU64,
    node_failures: Mutex<BTreeMap<NodeId, u64>>,
}

/// A copy of the counts at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStatsSnapshot {
    /// Requests sent to nodes by scatter-gathers (first rounds and replacements).
    pub node_requests: u64,
    /// Requests sent to another replica because a node failed or timed out.
    pub replacements: u64,
    /// Answers given with `X-Miroir-Degraded: shards=...`.
    pub partial_answers: u64,
    /// Reads refused with `miroir_shard_unavailable`.
    pub unavailable_errors: u64,
    /// Failed or timed-out node requests, by node.
    pub node_failures: BTreeMap<NodeId, u64>,
}

impl ReadStats {
    pub(crate) fn sent(&self, requests: usize, replacements: bool) {
        let n = requests as u64;
        self.node_requests.fetch_add(n, Ordering::Relaxed);
        if replacements {
            self.replacements.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn node_failed(&self, node: &NodeId) {
        *self.node_failures.lock().expect("read stats lock").entry(node.clone()).or_default() += 1;
    }

    pub(crate) fn partial(&self) {
        self.partial_answers.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn unavailable(&self) {
        self.unavailable_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ReadStatsSnapshot {
        ReadStatsSnapshot {
            node_requests: self.node_requests.load(Ordering::Relaxed),
            replacements: self.replacements.load(Ordering::Relaxed),
            partial_answers: self.partial_answers.load(Ordering::Relaxed),
            unavailable_errors: self.unavailable_errors.load(Ordering::Relaxed),
            node_failures: self.node_failures.lock().expect("read stats lock").clone(),
        }
    }
}
