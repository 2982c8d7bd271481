//! The metrics read from the gateway's own state at scrape time: each node's health and what
//! the search read path did (node requests, failures by node, replacements, partial answers,
//! stale answers by node).

use miroir_http::health::HealthState;
use miroir_http::AppState;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};

/// A Prometheus collector over an [`AppState`].
pub struct GatewayCollector {
    state: AppState,
    node_health: GaugeVec,
    node_requests: IntCounter,
    replacements: IntCounter,
    partial_answers: IntCounter,
    unavailable_errors: IntCounter,
    node_failures: IntCounterVec,
    catalog_rebuilds: IntCounter,
    indexes_restored: IntCounter,
    sequence_restores: IntCounter,
    stale_answers: IntCounterVec,
    repair_pending: IntGaugeVec,
    shard_coverage: Gauge,
    repair_documents_copied: IntCounter,
    repair_shards_lost: IntCounter,
    hedges_sent: IntCounter,
    hedges_won: IntCounter,
    hedges_wasted: IntCounter,
}

impl GatewayCollector {
    /// A collector reading `state`.
    pub fn new(state: AppState) -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::with_opts(Opts::new(name, help)).expect("valid counter")
        };
        GatewayCollector {
            state,
            node_health: GaugeVec::new(
                Opts::new(
                    "miroir_node_health",
                    "Each node's health from its probes: 1 healthy, 0.5 degraded, 0 down.",
                ),
                &["node", "group"],
            )
            .expect("valid gauge"),
            node_requests: counter(
                "miroir_scatter_node_requests_total",
                "Requests sent to nodes by searches (fan-out), replacements included.",
            ),
            replacements: counter(
                "miroir_scatter_replacements_total",
                "Requests sent to another replica because a node failed or timed out.",
            ),
            partial_answers: counter(
                "miroir_scatter_partial_responses_total",
                "Searches answered without some shards (X-Miroir-Degraded: shards=...).",
            ),
            unavailable_errors: counter(
                "miroir_scatter_unavailable_total",
                "Searches refused with miroir_shard_unavailable.",
            ),
            node_failures: IntCounterVec::new(
                Opts::new(
                    "miroir_scatter_node_failures_total",
                    "Search requests a node failed or did not answer in time, by node.",
                ),
                &["node"],
            )
            .expect("valid counter"),
            catalog_rebuilds: counter(
                "miroir_catalog_rebuilds_total",
                "Times the task store was found lacking part of the catalog and rebuilt from the nodes.",
            ),
            indexes_restored: counter(
                "miroir_catalog_indexes_restored_total",
                "Indexes restored into the task store from the catalog kept on the nodes.",
            ),
            sequence_restores: counter(
                "miroir_task_sequence_restores_total",
                "Times the task sequence was restored above the high-water mark kept on the nodes.",
            ),
            stale_answers: IntCounterVec::new(
                Opts::new(
                    "miroir_stale_answers_total",
                    "Reads a node answered without Miroir's copy of the index (index_not_found, \
                     bookkeeping filter refused), so another replica was asked; by node.",
                ),
                &["node"],
            )
            .expect("valid counter"),
            repair_pending: IntGaugeVec::new(
                Opts::new(
                    "miroir_repair_pending",
                    "Indexes of a node waiting for a repair (it missed acknowledged writes or lost the index), by node.",
                ),
                &["node"],
            )
            .expect("valid gauge"),
            shard_coverage: Gauge::with_opts(Opts::new(
                "miroir_shard_coverage",
                "Shards of every index with a fresh replica (an answering owner neither held stale \
                 nor under repair), divided by all shards.",
            ))
            .expect("valid gauge"),
            repair_documents_copied: counter(
                "miroir_repair_documents_copied_total",
                "Documents copied to replicas under repair by this instance (as leader).",
            ),
            repair_shards_lost: counter(
                "miroir_repair_shards_lost_total",
                "Shards repaired with no copy of their earlier documents left: every replica \
                 lost its data (by this instance, as leader).",
            ),
            hedges_sent: counter(
                "miroir_scatter_hedges_sent_total",
                "Extra node requests sent because a node was slow to answer a read (hedging).",
            ),
            hedges_won: counter(
                "miroir_scatter_hedges_won_total",
                "Hedged node requests whose answers were used (they came before the slow node's).",
            ),
            hedges_wasted: counter(
                "miroir_scatter_hedges_wasted_total",
                "Hedged node requests whose answers were not used (the slow node answered first, \
                 or a hedge failed).",
            ),
        }
    }

    fn refresh(&self) {
        let topology = self.state.topology();
        for (node, health) in self.state.health().snapshot() {
            let group = topology.group_of(&node).map(|g| g.as_str()).unwrap_or_default();
            let value = match health {
                HealthState::Healthy => 1.0,
                HealthState::Degraded => 0.5,
                HealthState::Down => 0.0,
            };
            self.node_health.with_label_values(&[node.as_str(), group]).set(value);
        }
        let stats = self.state.read_stats().snapshot();
        for (counter, value) in [
            (&self.node_requests, stats.node_requests),
            (&self.replacements, stats.replacements),
            (&self.partial_answers, stats.partial_answers),
            (&self.unavailable_errors, stats.unavailable_errors),
        ] {
            set_counter(counter, value);
        }
        let recovery = self.state.recovery().stats();
        for (counter, value) in [
            (&self.catalog_rebuilds, recovery.rebuilds),
            (&self.indexes_restored, recovery.indexes_restored),
            (&self.sequence_restores, recovery.sequence_restores),
        ] {
            set_counter(counter, value);
        }
        for (node, failures) in &stats.node_failures {
            set_counter(&self.node_failures.with_label_values(&[node.as_str()]), *failures);
        }
        for (node, answers) in self.state.stale().answers() {
            set_counter(&self.stale_answers.with_label_values(&[node.as_str()]), answers);
        }
        let repairs = self.state.repair_status();
        let pending = repairs.pending();
        for node in self.state.topology().nodes() {
            let count = pending.get(node).copied().unwrap_or(0);
            self.repair_pending.with_label_values(&[node.as_str()]).set(count as i64);
        }
        self.shard_coverage.set(repairs.coverage());
        set_counter(&self.repair_documents_copied, repairs.documents_copied());
        set_counter(&self.repair_shards_lost, repairs.shards_lost());
        let hedges = &self.state.replica_load().hedges;
        for (counter, value) in [
            (&self.hedges_sent, &hedges.sent),
            (&self.hedges_won, &hedges.won),
            (&self.hedges_wasted, &hedges.wasted),
        ] {
            set_counter(counter, value.load(std::sync::atomic::Ordering::Relaxed));
        }
    }
}

/// Brings a counter mirrored from a monotonic count up to `value`.
fn set_counter(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl Collector for GatewayCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.node_health.desc();
        for counter in [
            &self.node_requests,
            &self.replacements,
            &self.partial_answers,
            &self.unavailable_errors,
            &self.catalog_rebuilds,
            &self.indexes_restored,
            &self.sequence_restores,
            &self.repair_documents_copied,
            &self.repair_shards_lost,
            &self.hedges_sent,
            &self.hedges_won,
            &self.hedges_wasted,
        ] {
            descs.extend(counter.desc());
        }
        descs.extend(self.node_failures.desc());
        descs.extend(self.stale_answers.desc());
        descs.extend(self.repair_pending.desc());
        descs.extend(self.shard_coverage.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.node_health.collect();
        for counter in [
            &self.node_requests,
            &self.replacements,
            &self.partial_answers,
            &self.unavailable_errors,
            &self.catalog_rebuilds,
            &self.indexes_restored,
            &self.sequence_restores,
            &self.repair_documents_copied,
            &self.repair_shards_lost,
            &self.hedges_sent,
            &self.hedges_won,
            &self.hedges_wasted,
        ] {
            families.extend(counter.collect());
        }
        families.extend(self.node_failures.collect());
        families.extend(self.stale_answers.collect());
        families.extend(self.repair_pending.collect());
        families.extend(self.shard_coverage.collect());
        families
    }
}
