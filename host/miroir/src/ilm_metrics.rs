//! Index lifecycle metrics, read from the gateway's state at scrape time: rollovers and
//! retention deletions done by this instance while it led, failed checks, and each policy's
//! live backing indexes.

use std::sync::atomic::Ordering;

use miroir_http::AppState;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGaugeVec, Opts};

/// A Prometheus collector over the index lifecycle of an [`AppState`].
pub struct IlmCollector {
    state: AppState,
    rollovers: IntCounter,
    deleted: IntCounter,
    failures: IntCounter,
    backing: IntGaugeVec,
}

impl IlmCollector {
    /// A collector reading `state`.
    pub fn new(state: AppState) -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::with_opts(Opts::new(name, help)).expect("valid counter")
        };
        IlmCollector {
            state,
            rollovers: counter(
                "miroir_ilm_rollovers_total",
                "Rollovers to a new backing index done by this instance while it led.",
            ),
            deleted: counter(
                "miroir_ilm_indexes_deleted_total",
                "Backing indexes deleted past retention by this instance while it led.",
            ),
            failures: counter(
                "miroir_ilm_check_failures_total",
                "Index lifecycle checks that failed (retried at the next interval).",
            ),
            backing: IntGaugeVec::new(
                Opts::new(
                    "miroir_ilm_backing_indexes",
                    "Live backing indexes of each index lifecycle policy.",
                ),
                &["pattern"],
            )
            .expect("valid gauge"),
        }
    }
}

impl Collector for IlmCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.rollovers.desc();
        descs.extend(self.deleted.desc());
        descs.extend(self.failures.desc());
        descs.extend(self.backing.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let counters = self.state.ilm_counters();
        let set = |counter: &IntCounter, value: u64| {
            counter.inc_by(value.saturating_sub(counter.get()));
        };
        set(&self.rollovers, counters.rollovers.load(Ordering::Relaxed));
        set(&self.deleted, counters.deleted.load(Ordering::Relaxed));
        set(&self.failures, counters.failures.load(Ordering::Relaxed));
        for policy in &self.state.config().ilm.policies {
            let record = self.state.lifecycles().record(&policy.pattern);
            let live = i64::try_from(record.live().count()).unwrap_or(i64::MAX);
            self.backing.with_label_values(&[policy.pattern.as_str()]).set(live);
        }
        let mut families = Vec::new();
        families.extend(self.rollovers.collect());
        families.extend(self.deleted.collect());
        families.extend(self.failures.collect());
        families.extend(self.backing.collect());
        families
    }
}
