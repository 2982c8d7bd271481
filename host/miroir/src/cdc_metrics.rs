//! Change capture's counts on `/metrics`, read from the feed at scrape time.

use std::sync::Arc;

use miroir_cdc::Feed;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, Opts};

/// A Prometheus collector over the change feed.
pub struct CdcCollector {
    feed: Arc<Feed>,
    recorded: IntCounter,
    dropped: IntCounterVec,
    trimmed: IntCounter,
    delivered: IntCounterVec,
    failures: IntCounterVec,
    sink_dropped: IntCounterVec,
}

impl CdcCollector {
    /// A collector reading `feed`.
    pub fn new(feed: Arc<Feed>) -> Self {
        let vec = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid counter")
        };
        let counter = |name: &str, help: &str| {
            IntCounter::with_opts(Opts::new(name, help)).expect("valid counter")
        };
        CdcCollector {
            feed,
            recorded: counter(
                "miroir_cdc_events_total",
                "Change events appended to the change log (client writes that reached quorum).",
            ),
            dropped: vec(
                "miroir_cdc_events_dropped_total",
                "Change events never recorded, by reason: buffer_full (cdc.buffer.memory_events \
                 events were waiting to be stored), store_failed (the task store refused them).",
                "reason",
            ),
            trimmed: counter(
                "miroir_cdc_events_trimmed_total",
                "Change events removed from the log to keep it within cdc.buffer.store_events.",
            ),
            delivered: vec(
                "miroir_cdc_sink_events_total",
                "Change events a sink delivered, by sink (webhook, nats).",
                "sink",
            ),
            failures: vec(
                "miroir_cdc_sink_failures_total",
                "Failed deliveries of a batch (each retried with backoff), by sink.",
                "sink",
            ),
            sink_dropped: vec(
                "miroir_cdc_sink_dropped_total",
                "Change events trimmed from the log before a sink delivered them, by sink.",
                "sink",
            ),
        }
    }

    fn refresh(&self) {
        let stats = self.feed.stats();
        set(&self.recorded, stats.recorded);
        set(&self.trimmed, stats.trimmed);
        set(&self.dropped.with_label_values(&["buffer_full"]), stats.dropped_buffer_full);
        set(&self.dropped.with_label_values(&["store_failed"]), stats.dropped_store_failed);
        for sink in stats.sinks {
            set(&self.delivered.with_label_values(&[sink.sink]), sink.delivered);
            set(&self.failures.with_label_values(&[sink.sink]), sink.failures);
            set(&self.sink_dropped.with_label_values(&[sink.sink]), sink.dropped);
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

impl Collector for CdcCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.recorded.desc();
        descs.extend(self.trimmed.desc());
        for vec in [&self.dropped, &self.delivered, &self.failures, &self.sink_dropped] {
            descs.extend(vec.desc());
        }
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.recorded.collect();
        families.extend(self.trimmed.collect());
        for vec in [&self.dropped, &self.delivered, &self.failures, &self.sink_dropped] {
            families.extend(vec.collect());
        }
        families
    }
}
