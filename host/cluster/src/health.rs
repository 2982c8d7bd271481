//! Node health: each node's state (`healthy`, `degraded`, `down`) from the outcomes of its
//! probes, with thresholds in both directions so one lost probe does not take a node out and one
//! lucky probe does not bring a failing node back.
//!
//! This module only keeps the state; the prober that feeds it lives with the HTTP edge, which
//! owns the node clients and the runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use miroir_types::NodeId;

/// What Miroir believes of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HealthState {
    /// Answering its probes.
    Healthy,
    /// Missed some probes; still routed to when no healthy replica can serve.
    Degraded,
    /// Missed enough probes to be routed around entirely.
    Down,
}

impl HealthState {
    /// The state's name as reported by the admin API and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Degraded => "degraded",
            HealthState::Down => "down",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a node changes state: counts of consecutive probe outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthThresholds {
    /// Consecutive failures before a healthy node is `degraded`.
    pub degraded_after: u32,
    /// Consecutive failures before a node is `down`.
    pub down_after: u32,
    /// Consecutive successes before a degraded or down node is `healthy` again.
    pub recover_after: u32,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds { degraded_after: 1, down_after: 3, recover_after: 2 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    state: HealthState,
    failures: u32,
    successes: u32,
}

/// A state change reported by [`HealthRegistry::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before the probe.
    pub from: HealthState,
    /// The state after it.
    pub to: HealthState,
}

/// The health of every node. Every node starts `healthy`: until a probe says otherwise, Miroir
/// routes to it (a failing request is retried on another replica anyway).
#[derive(Debug)]
pub struct HealthRegistry {
    thresholds: HealthThresholds,
    nodes: Mutex<BTreeMap<NodeId, Entry>>,
}

impl HealthRegistry {
    /// A registry for `nodes`, all healthy.
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = &'a NodeId>,
        thresholds: HealthThresholds,
    ) -> Self {
        let entry = Entry { state: HealthState::Healthy, failures: 0, successes: 0 };
        HealthRegistry {
            thresholds,
            nodes: Mutex::new(nodes.into_iter().map(|n| (n.clone(), entry)).collect()),
        }
    }

    /// Records one probe outcome of `node`; returns the change of state it caused, if any.
    /// Unknown nodes are ignored.
    pub fn record(&self, node: &NodeId, ok: bool) -> Option<Transition> {
        let t = self.thresholds;
        let mut nodes = self.nodes.lock().expect("health registry lock");
        let entry = nodes.get_mut(node)?;
        let from = entry.state;
        if ok {
            entry.failures = 0;
            if entry.state != HealthState::Healthy {
                entry.successes += 1;
                if entry.successes >= t.recover_after {
                    entry.state = HealthState::Healthy;
                    entry.successes = 0;
                }
            }
        } else {
            entry.successes = 0;
            entry.failures = entry.failures.saturating_add(1);
            if entry.failures >= t.down_after {
                entry.state = HealthState::Down;
            } else if entry.failures >= t.degraded_after && entry.state == HealthState::Healthy {
                entry.state = HealthState::Degraded;
            }
        }
        (from != entry.state).then_some(Transition { from, to: entry.state })
    }

    /// The state of `node` (`healthy` for a node the registry does not know).
    pub fn state(&self, node: &NodeId) -> HealthState {
        self.nodes
            .lock()
            .expect("health registry lock")
            .get(node)
            .map_or(HealthState::Healthy, |e| e.state)
    }

    /// Whether requests may be sent to `node`: anything but `down`.
    pub fn is_available(&self, node: &NodeId) -> bool {
        self.state(node) != HealthState::Down
    }

    /// Whether `node` is `healthy`.
    pub fn is_healthy(&self, node: &NodeId) -> bool {
        self.state(node) == HealthState::Healthy
    }

    /// Every node's state.
    pub fn snapshot(&self) -> BTreeMap<NodeId, HealthState> {
        self.nodes
            .lock()
            .expect("health registry lock")
            .iter()
            .map(|(n, e)| (n.clone(), e.state))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (HealthRegistry, NodeId) {
        let node = NodeId::new("n0").unwrap();
        let registry = HealthRegistry::new(
            [&node],
            HealthThresholds { degraded_after: 1, down_after: 3, recover_after: 2 },
        );
        (registry, node)
    }

    #[test]
    fn failures_degrade_then_take_a_node_down() {
        let (r, n) = registry();
        assert_eq!(r.state(&n), HealthState::Healthy);
        assert_eq!(
            r.record(&n, false),
            Some(Transition { from: HealthState::Healthy, to: HealthState::Degraded })
        );
        assert!(r.is_available(&n) && !r.is_healthy(&n));
        assert_eq!(r.record(&n, false), None);
        assert_eq!(
            r.record(&n, false),
            Some(Transition { from: HealthState::Degraded, to: HealthState::Down })
        );
        assert!(!r.is_available(&n));
        assert_eq!(r.record(&n, false), None, "stays down");
    }

    #[test]
    fn recovery_needs_consecutive_successes() {
        let (r, n) = registry();
        for _ in 0..3 {
            r.record(&n, false);
        }
        assert_eq!(r.record(&n, true), None, "one success is not enough");
        assert_eq!(r.record(&n, false), None, "a failure resets the count");
        assert_eq!(r.record(&n, true), None);
        assert_eq!(
            r.record(&n, true),
            Some(Transition { from: HealthState::Down, to: HealthState::Healthy })
        );
        assert_eq!(r.record(&n, true), None);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let (r, n) = registry();
        r.record(&n, false);
        r.record(&n, false);
        r.record(&n, true);
        r.record(&n, false);
        assert_eq!(r.state(&n), HealthState::Degraded, "failures are counted consecutively");
        assert_eq!(r.snapshot().get(&n), Some(&HealthState::Degraded));
    }

    #[test]
    fn unknown_nodes_are_ignored_and_reported_healthy() {
        let (r, _) = registry();
        let other = NodeId::new("other").unwrap();
        assert_eq!(r.record(&other, false), None);
        assert_eq!(r.state(&other), HealthState::Healthy);
    }
}
