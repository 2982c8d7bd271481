//! The fleet's metrics, read from the followed fleet at scrape time: each node's state, and the
//! open rebalance run's progress.

use miroir_cluster::{MovePhase, NodeState};
use miroir_http::AppState;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntGauge, Opts};

/// A Prometheus collector over the fleet of an [`AppState`].
pub struct FleetCollector {
    state: AppState,
    node_state: GaugeVec,
    shards_total: IntGauge,
    shards_done: IntGauge,
    documents_copied: IntCounter,
}

impl FleetCollector {
    /// A collector reading `state`.
    pub fn new(state: AppState) -> Self {
        let gauge = |name: &str, help: &str| {
            IntGauge::with_opts(Opts::new(name, help)).expect("valid gauge")
        };
        FleetCollector {
            state,
            node_state: GaugeVec::new(
                Opts::new(
                    "miroir_node_state",
                    "1 for the fleet state each node is in (active, joining, draining, drained, removed).",
                ),
                &["node", "state"],
            )
            .expect("valid gauge"),
            shards_total: gauge(
                "miroir_rebalance_shards_total",
                "Shard moves of the open rebalance run (0 when none runs).",
            ),
            shards_done: gauge(
                "miroir_rebalance_shards_done",
                "Shard moves of the open run copied and switched to their new owners.",
            ),
            documents_copied: IntCounter::with_opts(Opts::new(
                "miroir_rebalance_documents_copied_total",
                "Documents this instance copied to new owners while rebalancing.",
            ))
            .expect("valid counter"),
        }
    }

    fn refresh(&self) {
        let view = self.state.fleet();
        let fleet = view.fleet();
        self.node_state.reset();
        for node in &fleet.nodes {
            for state in [
                NodeState::Active,
                NodeState::Joining,
                NodeState::Draining,
                NodeState::Drained,
                NodeState::Removed,
            ] {
                let value = if node.state == state { 1.0 } else { 0.0 };
                self.node_state.with_label_values(&[node.id.as_str(), state.as_str()]).set(value);
            }
        }
        let (total, done) = fleet
            .run
            .as_ref()
            .map_or((0, 0), |run| (run.moves.len(), run.count_at_least(MovePhase::Switched)));
        self.shards_total.set(total as i64);
        self.shards_done.set(done as i64);
        let copied = self.state.rebalance_metrics().documents_copied();
        let current = self.documents_copied.get();
        if copied > current {
            self.documents_copied.inc_by(copied - current);
        }
    }
}

impl Collector for FleetCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.node_state.desc();
        descs.extend(self.shards_total.desc());
        descs.extend(self.shards_done.desc());
        descs.extend(self.documents_copied.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.node_state.collect();
        families.extend(self.shards_total.collect());
        families.extend(self.shards_done.collect());
        families.extend(self.documents_copied.collect());
        families
    }
}
