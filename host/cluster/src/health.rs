//! Node health: each node's state (`healthy`, `degraded`, `down`) from the outcomes of its
//! probes, with thresholds in both directions so one lost probe does not take a node out and one
//! lucky probe does not bring a failing node back.
//!
//! Slow is not dead: a node that answered a real request recently ([`HealthRegistry::answered`])
//! is alive, so a probe it missed meanwhile is not counted against it; and the time a probe may
//! take ([`HealthRegistry::probe_timeout`]) follows the node's recent latency, so a busy node
//! that answers slowly is not taken for one that stopped answering.
//!
//! This module only keeps the state; the prober that feeds it lives with the HTTP edge, which
//! owns the node clients and the runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// Moving average of the time the node took to answer (probes and real requests).
    latency: Option<Duration>,
    /// When the node last answered a request (any answer below 500).
    last_answer: Option<Instant>,
}

/// How many times its recent latency a probe may take before it counts as missed.
const PROBE_LATENCY_FACTOR: u32 = 4;

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
    alive_window: Duration,
    nodes: Mutex<BTreeMap<NodeId, Entry>>,
}

impl HealthRegistry {
    /// A registry for `nodes`, all healthy.
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = &'a NodeId>,
        thresholds: HealthThresholds,
    ) -> Self {
        let entry = Entry {
            state: HealthState::Healthy,
            failures: 0,
            successes: 0,
            latency: None,
            last_answer: None,
        };
        HealthRegistry {
            thresholds,
            alive_window: Duration::ZERO,
            nodes: Mutex::new(nodes.into_iter().map(|n| (n.clone(), entry)).collect()),
        }
    }

    /// Starts tracking `nodes` not tracked yet (healthy) and stops tracking the others.
    pub fn track_only<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeId>) {
        let keep: std::collections::BTreeSet<&NodeId> = nodes.into_iter().collect();
        let mut tracked = self.nodes.lock().expect("health registry lock");
        tracked.retain(|id, _| keep.contains(id));
        for id in keep {
            tracked.entry(id.clone()).or_insert(Entry {
                state: HealthState::Healthy,
                failures: 0,
                successes: 0,
                latency: None,
                last_answer: None,
            });
        }
    }

    /// The registry, where a node that answered a request less than `window` ago is alive: a
    /// failed probe then does not count (typically twice the probe interval). Zero by default.
    pub fn with_alive_window(mut self, window: Duration) -> Self {
        self.alive_window = window;
        self
    }

    /// Records that `node` answered a request (a probe or a real one, any status below 500)
    /// after `latency`: it is alive, and its latency feeds [`HealthRegistry::probe_timeout`].
    pub fn answered(&self, node: &NodeId, latency: Duration) {
        let mut nodes = self.nodes.lock().expect("health registry lock");
        if let Some(entry) = nodes.get_mut(node) {
            entry.last_answer = Some(Instant::now());
            entry.latency = Some(blend(entry.latency, latency));
        }
    }

    /// Records that `node` refused a connection: whatever it answered before, it is not alive
    /// now, so its next missed probes count at once.
    pub fn refused(&self, node: &NodeId) {
        if let Some(entry) = self.nodes.lock().expect("health registry lock").get_mut(node) {
            entry.last_answer = None;
        }
    }

    /// Records that a probe of `node` gave up after `waited`: the next probe may wait longer
    /// (the estimate of its latency is at least `waited`).
    pub fn timed_out(&self, node: &NodeId, waited: Duration) {
        let mut nodes = self.nodes.lock().expect("health registry lock");
        if let Some(entry) = nodes.get_mut(node) {
            entry.latency = Some(entry.latency.map_or(waited, |l| l.max(waited)));
        }
    }

    /// How long a probe of `node` may take: [`PROBE_LATENCY_FACTOR`] times its recent latency,
    /// at least `base` (the configured probe timeout) and at most `cap` (the longest a read
    /// would wait for it).
    pub fn probe_timeout(&self, node: &NodeId, base: Duration, cap: Duration) -> Duration {
        let latency = self
            .nodes
            .lock()
            .expect("health registry lock")
            .get(node)
            .and_then(|e| e.latency)
            .unwrap_or_default();
        latency.saturating_mul(PROBE_LATENCY_FACTOR).min(cap.max(base)).max(base)
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
        } else if entry.last_answer.is_some_and(|at| at.elapsed() < self.alive_window) {
            // Answering real requests: slow to probe, not dead.
            entry.successes = 0;
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

/// The moving average of latencies: the new sample weighs 30 %.
fn blend(previous: Option<Duration>, sample: Duration) -> Duration {
    match previous {
        None => sample,
        Some(old) => (old * 7 + sample * 3) / 10,
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

    #[test]
    fn a_node_answering_requests_is_not_taken_down_by_missed_probes() {
        let node = NodeId::new("n0").unwrap();
        let r = HealthRegistry::new([&node], HealthThresholds::default())
            .with_alive_window(Duration::from_secs(60));
        r.answered(&node, Duration::from_millis(300));
        for _ in 0..5 {
            assert_eq!(r.record(&node, false), None);
        }
        assert_eq!(r.state(&node), HealthState::Healthy);
        let silent = HealthRegistry::new([&node], HealthThresholds::default());
        silent.answered(&node, Duration::from_millis(300));
        for _ in 0..3 {
            silent.record(&node, false);
        }
        assert_eq!(silent.state(&node), HealthState::Down, "no alive window: probes decide");
    }

    #[test]
    fn probe_timeouts_follow_recent_latency_within_bounds() {
        let (r, n) = registry();
        let (base, cap) = (Duration::from_millis(80), Duration::from_secs(5));
        assert_eq!(r.probe_timeout(&n, base, cap), base, "nothing known yet");
        r.answered(&n, Duration::from_millis(300));
        assert_eq!(r.probe_timeout(&n, base, cap), Duration::from_millis(1200));
        r.timed_out(&n, Duration::from_secs(3));
        assert_eq!(r.probe_timeout(&n, base, cap), cap);
        for _ in 0..10 {
            r.answered(&n, Duration::from_millis(1));
        }
        assert!(r.probe_timeout(&n, base, cap) < cap / 10, "fast answers bring it back down");
        let unknown = NodeId::new("other").unwrap();
        assert_eq!(r.probe_timeout(&unknown, base, cap), base);
    }
}
