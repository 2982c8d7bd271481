//! What the reads have seen of each node, for adaptive replica selection and hedged requests.
//!
//! Every node request of a read is timed: each node keeps a moving average (EWMA) of its answer
//! time and the number of requests it has outstanding, as Elasticsearch's adaptive replica
//! selection does. A read plan asks, among a shard's usable owners, only those not clearly
//! slower than the best ([`ReplicaLoad::preferred`]); a node passed over has its average decay,
//! so it is tried again now and then and can show it recovered. Health still decides first:
//! down and held-stale nodes are never asked, whatever their speed.
//!
//! Hedging: when a node has not answered after the recent p95 of node answer times
//! ([`ReplicaLoad::hedge_delay`]), the scatter engine asks other owners of its shards and takes
//! whichever answers first. Each request a read sends earns `budget` tokens, each hedged
//! request costs one ([`ReplicaLoad::try_hedge`]), so hedges never exceed `budget` times the
//! requests sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use miroir_types::NodeId;

/// How hedged requests are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgePolicy {
    /// Whether reads hedge at all.
    pub enabled: bool,
    /// Extra requests allowed, as a fraction of the requests reads send (0.05: 5 %).
    pub budget: f64,
    /// The shortest wait before a hedge, whatever the recent p95.
    pub min_delay: Duration,
    /// The longest wait before a hedge (a hedge after the node timeout would be pointless).
    pub max_delay: Duration,
}

impl Default for HedgePolicy {
    fn default() -> Self {
        HedgePolicy {
            enabled: true,
            budget: 0.05,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Hedges sent, won (the hedge answered first) and wasted (the first node answered first).
#[derive(Debug, Default)]
pub struct HedgeCounts {
    /// Extra node requests sent by hedging.
    pub sent: AtomicU64,
    /// Hedges whose answers were used.
    pub won: AtomicU64,
    /// Hedges whose answers were not used.
    pub wasted: AtomicU64,
}

/// Weight of a new answer time in a node's average.
const EWMA_WEIGHT: f64 = 0.3;
/// A node is passed over when its score is above `SLOWER_FACTOR` times the best plus
/// [`SLOWER_SLACK_US`]: replicas of similar speed still share the load round-robin.
const SLOWER_FACTOR: f64 = 2.0;
const SLOWER_SLACK_US: f64 = 2_000.0;
/// What a passed-over node's average keeps each time: tried again after about a hundred and
/// fifty plans when it was ten times slower.
const PASSED_OVER_DECAY: f64 = 0.99;
/// Answer times kept for the hedge delay's p95, and how many are needed before hedging.
const WINDOW: usize = 256;
const MIN_SAMPLES: usize = 20;
/// Lost hedge races counted at most (the penalty is at most `2^MAX_LOSSES` times).
const MAX_LOSSES: u32 = 6;
/// Unused hedge tokens kept at most.
const MAX_TOKENS: f64 = 10.0;

#[derive(Debug, Default, Clone, Copy)]
struct NodeLoad {
    /// Average answer time in microseconds, decayed while the node is passed over; `None`
    /// before the first answer.
    ewma_us: Option<f64>,
    /// The average as last measured, before any decay.
    measured_us: f64,
    outstanding: u32,
    /// A hedge answered before this node's request, which is being cancelled.
    losing: bool,
    /// Hedge races lost in a row: each doubles the penalty, so a node that stays slow is
    /// tried again less and less often.
    losses: u32,
}

#[derive(Debug, Default)]
struct Window {
    samples: Vec<u32>,
    next: usize,
    /// The p95 of `samples`, recomputed every few samples.
    p95_us: Option<u32>,
    since_p95: usize,
}

/// Per-node answer times and outstanding requests of reads, the hedge budget and counts.
#[derive(Debug)]
pub struct ReplicaLoad {
    adaptive: bool,
    policy: HedgePolicy,
    nodes: Mutex<HashMap<NodeId, NodeLoad>>,
    window: Mutex<Window>,
    tokens: Mutex<f64>,
    /// Hedging figures, for metrics.
    pub hedges: HedgeCounts,
}

impl Default for ReplicaLoad {
    fn default() -> Self {
        ReplicaLoad::new(true, HedgePolicy::default())
    }
}

impl ReplicaLoad {
    /// Selection by speed when `adaptive` (else replicas are only rotated), hedging as `policy`.
    pub fn new(adaptive: bool, policy: HedgePolicy) -> Self {
        ReplicaLoad {
            adaptive,
            policy,
            nodes: Mutex::default(),
            window: Mutex::default(),
            tokens: Mutex::new(0.0),
            hedges: HedgeCounts::default(),
        }
    }

    /// A read's request to `node` starts (it earns hedge budget); the guard records its end
    /// (or its cancellation).
    pub fn start(&self, node: &NodeId) -> InFlight<'_> {
        self.begin(node, true)
    }

    /// A hedged request to `node` starts (it earns no budget).
    pub fn start_hedge(&self, node: &NodeId) -> InFlight<'_> {
        self.begin(node, false)
    }

    fn begin(&self, node: &NodeId, earns: bool) -> InFlight<'_> {
        let mut nodes = self.nodes.lock().expect("replica load lock");
        nodes.entry(node.clone()).or_default().outstanding += 1;
        drop(nodes);
        if earns && self.policy.enabled {
            let mut tokens = self.tokens.lock().expect("hedge token lock");
            *tokens = (*tokens + self.policy.budget).min(MAX_TOKENS);
        }
        InFlight { load: self, node: node.clone(), started: Instant::now(), done: false }
    }

    fn end(&self, node: &NodeId, elapsed: Duration, answered: bool) {
        let us = elapsed.as_secs_f64() * 1e6;
        let mut nodes = self.nodes.lock().expect("replica load lock");
        let entry = nodes.entry(node.clone()).or_default();
        entry.outstanding = entry.outstanding.saturating_sub(1);
        let average = match entry.ewma_us {
            // Cancelled because a hedge answered first: it took at least twice what the hedge
            // needed, and more each race it loses in a row.
            _ if std::mem::take(&mut entry.losing) => {
                entry.losses = (entry.losses + 1).min(MAX_LOSSES);
                let penalty = us.max(entry.measured_us) * f64::from(1u32 << entry.losses);
                // Never slower than the node timeout: a recovered node is tried again.
                penalty.min(self.policy.max_delay.as_secs_f64() * 1e6).max(us)
            }
            None => us,
            // Unanswered (failed), the time is only a lower bound: it never makes the node
            // look faster than it was last measured.
            Some(_) if !answered => us.max(entry.measured_us),
            Some(avg) => {
                entry.losses = 0;
                avg + EWMA_WEIGHT * (us - avg)
            }
        };
        entry.ewma_us = Some(average);
        entry.measured_us = average;
        drop(nodes);
        if answered {
            let mut window = self.window.lock().expect("latency window lock");
            let sample = us.min(f64::from(u32::MAX)) as u32;
            if window.samples.len() < WINDOW {
                window.samples.push(sample);
            } else {
                let next = window.next;
                window.samples[next] = sample;
            }
            window.next = (window.next + 1) % WINDOW;
            window.since_p95 += 1;
            if window.samples.len() >= MIN_SAMPLES
                && (window.p95_us.is_none() || window.since_p95 >= 16)
            {
                let mut sorted = window.samples.clone();
                sorted.sort_unstable();
                window.p95_us = Some(sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)]);
                window.since_p95 = 0;
            }
        }
    }

    /// `node`'s score: average answer time times one plus its outstanding requests; `None`
    /// before it answered once.
    fn score(load: &NodeLoad) -> Option<f64> {
        load.ewma_us.map(|avg| avg * f64::from(1 + load.outstanding))
    }

    /// The nodes among `candidates` a read should ask: those not clearly slower than the best
    /// (every candidate when selection is not adaptive or nothing is known yet). Nodes passed
    /// over have their average decay, so they are tried again later.
    pub fn preferred<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a NodeId>,
    ) -> Vec<&'a NodeId> {
        let candidates: Vec<&NodeId> = candidates.into_iter().collect();
        if !self.adaptive || candidates.len() < 2 {
            return candidates;
        }
        let mut nodes = self.nodes.lock().expect("replica load lock");
        let scores: Vec<Option<f64>> =
            candidates.iter().map(|n| nodes.get(*n).and_then(Self::score)).collect();
        // A node never measured counts as the fastest: it is tried.
        let best = scores.iter().map(|s| s.unwrap_or(0.0)).fold(f64::INFINITY, f64::min);
        let limit = best * SLOWER_FACTOR + SLOWER_SLACK_US;
        let mut kept = Vec::with_capacity(candidates.len());
        for (node, score) in candidates.into_iter().zip(scores) {
            if score.is_some_and(|s| s > limit) {
                if let Some(avg) = nodes.get_mut(node).and_then(|l| l.ewma_us.as_mut()) {
                    *avg *= PASSED_OVER_DECAY;
                }
            } else {
                kept.push(node);
            }
        }
        kept
    }

    /// How long a read waits for a node before hedging: the recent p95 of node answer times
    /// within the policy's bounds; `None` when hedging is off or too few answers were seen.
    pub fn hedge_delay(&self) -> Option<Duration> {
        if !self.policy.enabled {
            return None;
        }
        let p95 = self.window.lock().expect("latency window lock").p95_us?;
        let delay = Duration::from_micros(u64::from(p95));
        Some(delay.clamp(self.policy.min_delay, self.policy.max_delay.max(self.policy.min_delay)))
    }

    /// Takes the budget for `requests` hedged requests; false (nothing taken) when the budget
    /// does not allow them.
    pub fn try_hedge(&self, requests: usize) -> bool {
        let mut tokens = self.tokens.lock().expect("hedge token lock");
        let cost = requests as f64;
        if !self.policy.enabled || *tokens < cost {
            return false;
        }
        *tokens -= cost;
        self.hedges.sent.fetch_add(requests as u64, Ordering::Relaxed);
        true
    }

    /// `node`'s request lost to a hedge and is being cancelled: when its [`InFlight`] ends,
    /// the node is counted slower than the time it was given.
    pub fn lost_race(&self, node: &NodeId) {
        if let Some(entry) = self.nodes.lock().expect("replica load lock").get_mut(node) {
            entry.losing = true;
        }
    }

    /// Records how a hedge of `requests` requests ended.
    pub fn hedge_ended(&self, requests: usize, won: bool) {
        let counter = if won { &self.hedges.won } else { &self.hedges.wasted };
        counter.fetch_add(requests as u64, Ordering::Relaxed);
    }
}

/// One request in flight to a node (see [`ReplicaLoad::start`]). Dropped without
/// [`InFlight::answered`] (cancelled, or failed), its time still counts for the node: it took
/// at least that long.
#[derive(Debug)]
pub struct InFlight<'a> {
    load: &'a ReplicaLoad,
    node: NodeId,
    started: Instant,
    done: bool,
}

impl InFlight<'_> {
    /// The node answered: its time feeds the node's average and the hedge delay's p95.
    pub fn answered(mut self) {
        self.done = true;
        self.load.end(&self.node, self.started.elapsed(), true);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.load.end(&self.node, self.started.elapsed(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).expect("id")
    }

    fn answer(load: &ReplicaLoad, name: &str, us: u64) {
        // Times are written directly: no test waits.
        load.start(&node(name)).done = true;
        load.end(&node(name), Duration::from_micros(us), true);
    }

    #[test]
    fn a_clearly_slower_replica_is_passed_over_then_tried_again() {
        let load = ReplicaLoad::default();
        let (fast, slow) = (node("fast"), node("slow"));
        assert_eq!(load.preferred([&fast, &slow]).len(), 2, "nothing known: both");
        answer(&load, "fast", 1_000);
        answer(&load, "slow", 50_000);
        assert_eq!(load.preferred([&fast, &slow]), vec![&fast]);
        let mut plans = 1;
        while load.preferred([&fast, &slow]).len() == 1 {
            plans += 1;
            assert!(plans < 1_000, "the slow replica is tried again at some point");
        }
        assert!(plans > 100, "not too often: {plans}");
        // Tried again and cancelled after a while (a hedge answered first): slow as before,
        // and tried again later than the first time.
        let retry = load.start(&slow);
        load.lost_race(&slow);
        drop(retry);
        let mut again = 1;
        while load.preferred([&fast, &slow]).len() == 1 {
            again += 1;
            assert!(again < 10_000, "the slow replica is tried again at some point");
        }
        assert!(again > plans, "a lost race backs off: {again} plans, {plans} before");
    }

    #[test]
    fn replicas_of_similar_speed_are_both_kept() {
        let load = ReplicaLoad::default();
        answer(&load, "a", 800);
        answer(&load, "b", 1_300);
        assert_eq!(load.preferred([&node("a"), &node("b")]).len(), 2);
        let off = ReplicaLoad::new(false, HedgePolicy::default());
        answer(&off, "a", 800);
        answer(&off, "b", 80_000);
        assert_eq!(off.preferred([&node("a"), &node("b")]).len(), 2, "not adaptive");
    }

    #[test]
    fn hedges_stay_within_the_budget() {
        let load = ReplicaLoad::default();
        let mut hedged = 0;
        for _ in 0..1_000 {
            drop(load.start(&node("a")));
            if load.try_hedge(1) {
                hedged += 1;
            }
        }
        assert!((45..=50).contains(&hedged), "{hedged}");
        assert_eq!(load.hedges.sent.load(Ordering::Relaxed), hedged);
        let off = ReplicaLoad::new(true, HedgePolicy { enabled: false, ..HedgePolicy::default() });
        drop(off.start(&node("a")));
        assert!(!off.try_hedge(0) && off.hedge_delay().is_none());
    }

    #[test]
    fn the_hedge_delay_is_the_recent_p95_within_bounds() {
        let load = ReplicaLoad::default();
        for i in 0..MIN_SAMPLES as u64 - 1 {
            answer(&load, "a", 1_000 + i);
        }
        assert_eq!(load.hedge_delay(), None, "too few answers");
        for i in 0..100 {
            answer(&load, "a", 1_000 * (i % 10 + 1));
        }
        let delay = load.hedge_delay().expect("a delay");
        assert!(
            delay >= Duration::from_millis(9) && delay <= Duration::from_millis(10),
            "{delay:?}"
        );
        for _ in 0..300 {
            answer(&load, "a", 10);
        }
        assert_eq!(load.hedge_delay(), Some(Duration::from_millis(1)), "at least min_delay");
    }
}
