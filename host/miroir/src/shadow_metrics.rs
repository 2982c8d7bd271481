//! The shadow tee's counts on `/metrics`, read from the tee at scrape time.

use std::sync::Arc;

use miroir_http::shadow::ShadowTee;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, Opts};

/// A Prometheus collector over the shadow tee.
pub struct ShadowCollector {
    tee: Arc<ShadowTee>,
    sampled: IntCounter,
    dropped: IntCounter,
    comparisons: IntCounterVec,
    tau: GaugeVec,
}

impl ShadowCollector {
    /// A collector reading `tee`.
    pub fn new(tee: Arc<ShadowTee>) -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::with_opts(Opts::new(name, help)).expect("valid counter")
        };
        ShadowCollector {
            tee,
            sampled: counter("miroir_shadow_sampled_total", "Client reads sampled for shadowing (shadow.sample_rate)."),
            dropped: counter(
                "miroir_shadow_dropped_total",
                "Sampled reads not compared because 1024 comparisons were already waiting (slow or dead targets).",
            ),
            comparisons: IntCounterVec::new(
                Opts::new(
                    "miroir_shadow_comparisons_total",
                    "Comparisons of a client read with a shadow target's answer, by target and result \
                     (identical, differs, error: one side failed; an error also counts as differs).",
                ),
                &["target", "result"],
            )
            .expect("valid counter"),
            tau: GaugeVec::new(
                Opts::new(
                    "miroir_shadow_kendall_tau",
                    "Mean Kendall tau of the common hits' order, client answer vs target, since start, by target.",
                ),
                &["target"],
            )
            .expect("valid gauge"),
        }
    }

    fn refresh(&self) {
        let stats = self.tee.stats();
        set(&self.sampled, stats.sampled);
        set(&self.dropped, stats.dropped);
        for target in stats.targets {
            let name = target.name.as_str();
            set(&self.comparisons.with_label_values(&[name, "identical"]), target.identical);
            set(&self.comparisons.with_label_values(&[name, "differs"]), target.differing);
            set(&self.comparisons.with_label_values(&[name, "error"]), target.errors);
            if let Some(tau) = target.mean_tau {
                self.tau.with_label_values(&[name]).set(tau);
            }
        }
    }
}

/// Brings a counter mirrored from a monotonic count up to `value`.
fn set(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl Collector for ShadowCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.sampled.desc();
        descs.extend(self.dropped.desc());
        descs.extend(self.comparisons.desc());
        descs.extend(self.tau.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.sampled.collect();
        families.extend(self.dropped.collect());
        families.extend(self.comparisons.collect());
        families.extend(self.tau.collect());
        families
    }
}
