//! The Prometheus registry and the metrics this binary owns, in text exposition format.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every metric the gateway exports, registered once.
pub struct Metrics {
    registry: Registry,
    pub task_store_latency: HistogramVec,
    pub background_queue_depth: IntGauge,
    pub idempotency_cache_entries: IntGauge,
    pub session_pinning_active_sessions: IntGauge,
    pub requests_in_flight: IntGauge,
    pub is_leader: IntGauge,
    /// Finished tasks this instance pruned past their retention.
    pub tasks_pruned: IntCounter,
    /// Singleton writes the store refused because a newer leader holds the lease, by `job`.
    pub fenced_writes_refused: IntCounterVec,
    /// Nodes whose drifted settings the leader repaired.
    pub settings_drift_repairs: IntCounter,
    /// Client request duration by route template, method and status.
    pub request_duration: HistogramVec,
    /// Client connections open on the main port.
    pub client_connections: IntGauge,
    /// Node request duration by node and route kind.
    pub node_request_duration: HistogramVec,
    /// The gateway's own background work waiting (repairs, shard moves), added to the store's
    /// jobs in `miroir_background_queue_depth`; installed once the gateway state exists.
    backlog: std::sync::OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
    /// Task store jobs queued or claimed, as the last housekeeping read them.
    store_jobs: std::sync::atomic::AtomicU64,
}

impl Metrics {
    /// Counts `backlog` (the gateway's own waiting background work) in
    /// `miroir_background_queue_depth`; once only.
    pub fn install_backlog(&self, backlog: Box<dyn Fn() -> u64 + Send + Sync>) {
        let _ = self.backlog.set(backlog);
    }

    /// Records the task store's jobs queued or claimed (read by housekeeping).
    pub fn set_store_jobs(&self, jobs: u64) {
        self.store_jobs.store(jobs, std::sync::atomic::Ordering::Relaxed);
    }

    /// `miroir_background_queue_depth` now: the store's jobs as last read, plus the gateway's own
    /// waiting work read at this moment.
    fn refresh_queue_depth(&self) {
        let jobs = self.store_jobs.load(std::sync::atomic::Ordering::Relaxed);
        let own = self.backlog.get().map_or(0, |backlog| backlog());
        self.background_queue_depth.set(i64::try_from(jobs + own).unwrap_or(i64::MAX));
    }

    pub fn new() -> Self {
        let registry = Registry::new();
        let task_store_latency = HistogramVec::new(
            HistogramOpts::new(
                "miroir_task_store_latency_seconds",
                "Task store operation latency, by operation and backend.",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]),
            &["op", "backend"],
        )
        .expect("valid histogram");
        let gauge = |name: &str, help: &str| {
            IntGauge::with_opts(Opts::new(name, help)).expect("valid gauge")
        };
        let metrics = Self {
            task_store_latency,
            background_queue_depth: gauge(
                "miroir_background_queue_depth",
                "Background work waiting: repairs pending (one per node and index), shard moves \
                 not yet switched, and task store jobs queued or claimed.",
            ),
            idempotency_cache_entries: gauge(
                "miroir_idempotency_cache_entries",
                "Idempotency keys held in the task store.",
            ),
            session_pinning_active_sessions: gauge(
                "miroir_session_pinning_active_sessions",
                "Live read-your-writes sessions.",
            ),
            requests_in_flight: gauge("miroir_requests_in_flight", "Client requests being served."),
            node_request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "miroir_node_request_duration_seconds",
                    "Duration of the requests Miroir sends to nodes, until their answer or \
                     failure, by node and route kind (search, documents, tasks, ...).",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["node", "route"],
            )
            .expect("valid histogram"),
            client_connections: gauge(
                "miroir_client_connections_open",
                "Client connections open on the main port (idle keep-alive ones included).",
            ),
            is_leader: gauge("miroir_is_leader", "1 while this instance holds the leader lease."),
            tasks_pruned: IntCounter::with_opts(Opts::new(
                "miroir_tasks_pruned_total",
                "Finished tasks pruned past their retention by this instance.",
            ))
            .expect("valid counter"),
            fenced_writes_refused: IntCounterVec::new(
                Opts::new(
                    "miroir_fenced_writes_refused_total",
                    "Leader-only writes refused because a newer leader holds the lease, by job.",
                ),
                &["job"],
            )
            .expect("valid counter"),
            request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "miroir_request_duration_seconds",
                    "Client request duration, by route template, method and status.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["route", "method", "status"],
            )
            .expect("valid histogram"),
            settings_drift_repairs: IntCounter::with_opts(Opts::new(
                "miroir_settings_drift_repairs_total",
                "Nodes whose index settings differed from the other nodes' and were repaired.",
            ))
            .expect("valid counter"),
            backlog: std::sync::OnceLock::new(),
            store_jobs: std::sync::atomic::AtomicU64::new(0),
            registry,
        };
        for collector in [
            Box::new(metrics.task_store_latency.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.background_queue_depth.clone()),
            Box::new(metrics.idempotency_cache_entries.clone()),
            Box::new(metrics.session_pinning_active_sessions.clone()),
            Box::new(metrics.requests_in_flight.clone()),
            Box::new(metrics.is_leader.clone()),
            Box::new(metrics.tasks_pruned.clone()),
            Box::new(metrics.fenced_writes_refused.clone()),
            Box::new(metrics.settings_drift_repairs.clone()),
            Box::new(metrics.request_duration.clone()),
            Box::new(metrics.client_connections.clone()),
            Box::new(metrics.node_request_duration.clone()),
            Box::new(crate::trace_export::SPANS_DROPPED.clone()),
            // process_resident_memory_bytes, process_open_fds, process_cpu_seconds_total, ...
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            metrics.registry.register(collector).expect("each metric is registered once");
        }
        metrics
    }

    /// Adds a collector read at every scrape (the gateway's own state).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(error) = self.registry.register(collector) {
            tracing::error!(%error, "cannot register a metrics collector");
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.refresh_queue_depth();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding never fails");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What the request middleware records: `miroir_requests_in_flight` and
/// `miroir_request_duration_seconds`.
#[derive(Clone)]
pub struct RequestMetrics {
    /// Requests being served.
    pub in_flight: IntGauge,
    /// Durations by route template, method and status.
    pub duration: HistogramVec,
}

/// Middleware counting the client requests being served and timing each one by route template
/// (`/indexes/{uid}/search`, never the raw path), method and status; a request dropped midway
/// is uncounted too. Use with `axum::middleware::from_fn_with_state(metrics, observe_request)`.
pub async fn observe_request(
    axum::extract::State(metrics): axum::extract::State<RequestMetrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().to_string();
    let _counted = InFlight::enter(metrics.in_flight);
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics
        .duration
        .with_label_values(&[route.as_str(), method.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// One request counted in the in-flight gauge until dropped.
struct InFlight(IntGauge);

impl InFlight {
    fn enter(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Feeds store latencies into `miroir_task_store_latency_seconds`.
pub struct StoreLatency(pub HistogramVec);

impl miroir_store::StoreMetrics for StoreLatency {
    fn observe(&self, op: &'static str, backend: &'static str, elapsed: Duration, _ok: bool) {
        self.0.with_label_values(&[op, backend]).observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miroir_store::StoreMetrics as _;

    #[test]
    fn store_latencies_and_gauges_are_exported() {
        let metrics = Metrics::new();
        StoreLatency(metrics.task_store_latency.clone()).observe(
            "create_task",
            "sqlite",
            Duration::from_millis(3),
            true,
        );
        metrics.set_store_jobs(3);
        metrics.install_backlog(Box::new(|| 1));
        metrics.fenced_writes_refused.with_label_values(&["prune"]).inc();
        let text = metrics.render();
        assert!(
            text.contains(
                "miroir_task_store_latency_seconds_count{backend=\"sqlite\",op=\"create_task\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("miroir_background_queue_depth 4"), "{text}");
        assert!(text.contains("miroir_fenced_writes_refused_total{job=\"prune\"} 1"), "{text}");
        for name in [
            "miroir_idempotency_cache_entries",
            "miroir_session_pinning_active_sessions",
            "miroir_requests_in_flight",
            "miroir_tasks_pruned_total",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
