//! Plugin metrics on `/metrics`: every call of every plugin export, and the metrics plugins
//! record through their `metrics` import.
//!
//! - `miroir_plugin_calls_total{plugin,hook}`, `miroir_plugin_failures_total{plugin,hook}`
//!   (calls the sandbox stopped: trap, deadline, memory) and
//!   `miroir_plugin_call_duration_seconds{plugin,hook}`; `hook` is the export's WIT name
//!   (`handle`, `plan-search`, `merge-search`, `after-response`, `on-write`, `tick`).
//! - `miroir_plugin_deliveries_dropped_total`: `after-response` and `on-write` deliveries dropped
//!   because too many were pending (a hook slower than the traffic).
//! - A metric `name` a plugin records is exposed as `miroir_plugin_<plugin>_<name>` (`plugin` the
//!   configured name; characters a Prometheus name cannot hold become `_`), with the labels the
//!   plugin gave. Its label names are fixed by its first sample: a later sample with other label
//!   names is dropped (and logged), as Prometheus cannot hold both.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use miroir_plugins::{MetricKind, MetricSample};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

/// One metric a plugin recorded.
enum Recorded {
    Counter(IntCounterVec),
    Histogram(HistogramVec),
    Gauge(GaugeVec),
}

/// The plugin metrics collector; register it once, feed it from the plugin host.
pub struct PluginMetrics {
    calls: IntCounterVec,
    failures: IntCounterVec,
    duration: HistogramVec,
    dropped: IntCounter,
    recorded: Mutex<HashMap<String, (Vec<String>, Recorded)>>,
}

/// `miroir_plugin_<plugin>_<name>` with every character outside `[a-zA-Z0-9_]` as `_`.
pub fn exposed_name(plugin: &str, name: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
    };
    format!("miroir_plugin_{}_{}", clean(plugin), clean(name))
}

impl PluginMetrics {
    /// The collector, with nothing recorded.
    pub fn new() -> Self {
        PluginMetrics {
            calls: IntCounterVec::new(
                Opts::new("miroir_plugin_calls_total", "Calls of a plugin's exports, by hook."),
                &["plugin", "hook"],
            )
            .expect("valid counter"),
            failures: IntCounterVec::new(
                Opts::new(
                    "miroir_plugin_failures_total",
                    "Plugin calls the sandbox stopped (trap, deadline, memory), by hook.",
                ),
                &["plugin", "hook"],
            )
            .expect("valid counter"),
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "miroir_plugin_call_duration_seconds",
                    "Duration of plugin calls, by hook.",
                )
                .buckets(vec![
                    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
                ]),
                &["plugin", "hook"],
            )
            .expect("valid histogram"),
            dropped: IntCounter::with_opts(Opts::new(
                "miroir_plugin_deliveries_dropped_total",
                "after-response and on-write deliveries dropped because too many were pending.",
            ))
            .expect("valid counter"),
            recorded: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one call of `plugin`'s `hook`.
    pub fn call(&self, plugin: &str, hook: &str, took: Duration, failed: bool) {
        let labels = [plugin, hook];
        self.calls.with_label_values(&labels).inc();
        if failed {
            self.failures.with_label_values(&labels).inc();
        }
        self.duration.with_label_values(&labels).observe(took.as_secs_f64());
    }

    /// Records a sample a plugin gave through its `metrics` import.
    pub fn record(&self, plugin: &str, sample: MetricSample) {
        let name = exposed_name(plugin, &sample.name);
        let mut labels = sample.labels;
        labels.sort();
        let label_names: Vec<String> = labels.iter().map(|(k, _)| k.clone()).collect();
        let values: Vec<&str> = labels.iter().map(|(_, v)| v.as_str()).collect();
        let mut recorded = self.recorded.lock().expect("plugin metrics lock poisoned");
        if !recorded.contains_key(&name) {
            let help = format!("Recorded by plugin `{plugin}` as `{}`.", sample.name);
            let opts = Opts::new(name.clone(), help.clone());
            let names: Vec<&str> = label_names.iter().map(String::as_str).collect();
            let metric = match sample.kind {
                MetricKind::Counter(_) => IntCounterVec::new(opts, &names).map(Recorded::Counter),
                MetricKind::Histogram(_) => {
                    HistogramVec::new(HistogramOpts::new(name.clone(), help), &names)
                        .map(Recorded::Histogram)
                }
                MetricKind::Gauge(_) => GaugeVec::new(opts, &names).map(Recorded::Gauge),
            };
            match metric {
                Ok(metric) => {
                    recorded.insert(name.clone(), (label_names.clone(), metric));
                }
                Err(error) => {
                    tracing::warn!(plugin, metric = %sample.name, %error, "invalid plugin metric");
                    return;
                }
            }
        }
        let (names, metric) = recorded.get(&name).expect("inserted above");
        if *names != label_names {
            tracing::warn!(plugin, metric = %sample.name, "plugin metric sample with other label names dropped");
            return;
        }
        match (metric, sample.kind) {
            (Recorded::Counter(c), MetricKind::Counter(v)) => {
                c.with_label_values(&values).inc_by(v)
            }
            (Recorded::Histogram(h), MetricKind::Histogram(v)) => {
                h.with_label_values(&values).observe(v)
            }
            (Recorded::Gauge(g), MetricKind::Gauge(v)) => g.with_label_values(&values).set(v),
            _ => {
                tracing::warn!(plugin, metric = %sample.name, "plugin metric of another kind dropped")
            }
        }
    }
}

impl Default for PluginMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The collector registered with the registry, sharing the [`PluginMetrics`] the host feeds.
pub struct PluginCollector(pub std::sync::Arc<PluginMetrics>);

impl Collector for PluginCollector {
    fn desc(&self) -> Vec<&Desc> {
        // The plugins' own metrics appear at run time: only the fixed ones are described.
        let mut descs = self.0.calls.desc();
        descs.extend(self.0.failures.desc());
        descs.extend(self.0.duration.desc());
        descs.extend(self.0.dropped.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = self.0.calls.collect();
        families.extend(self.0.failures.collect());
        families.extend(self.0.duration.collect());
        let dropped = miroir_http::after_response::dropped_deliveries();
        if dropped > self.0.dropped.get() {
            self.0.dropped.inc_by(dropped - self.0.dropped.get());
        }
        families.extend(self.0.dropped.collect());
        let recorded = self.0.recorded.lock().expect("plugin metrics lock poisoned");
        for (_, metric) in recorded.values() {
            families.extend(match metric {
                Recorded::Counter(c) => c.collect(),
                Recorded::Histogram(h) => h.collect(),
                Recorded::Gauge(g) => g.collect(),
            });
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_metrics_are_named_after_the_plugin() {
        assert_eq!(exposed_name("top-facets", "hits"), "miroir_plugin_top_facets_hits");
        let metrics = std::sync::Arc::new(PluginMetrics::new());
        metrics.record(
            "top-facets",
            MetricSample {
                kind: MetricKind::Counter(2),
                name: "hits".into(),
                labels: vec![("index".into(), "movies".into())],
            },
        );
        metrics.call("top-facets", "plan-search", Duration::from_micros(20), true);
        let registry = prometheus::Registry::new();
        registry.register(Box::new(PluginCollector(metrics))).expect("register");
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut out)
            .expect("encode");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("miroir_plugin_top_facets_hits{index=\"movies\"} 2"), "{text}");
        assert!(
            text.contains(
                "miroir_plugin_failures_total{hook=\"plan-search\",plugin=\"top-facets\"} 1"
            ),
            "{text}"
        );
    }
}
