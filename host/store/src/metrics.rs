//! The hook through which stores report how long each operation took.
//!
//! Every backend calls [`StoreMetrics::observe`] once per trait call with the operation name
//! (the trait method's name, e.g. `"create_task"`), the backend name and the elapsed time. The
//! host implements it to feed the `miroir_task_store_latency_seconds{op,backend}` histogram; the
//! default, [`NoMetrics`], drops the observations.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Receives one observation per store operation. Must be cheap: it runs on the request path.
pub trait StoreMetrics: Send + Sync {
    /// `op` on `backend` took `elapsed`; `ok` is false when it returned an error.
    fn observe(&self, op: &'static str, backend: &'static str, elapsed: Duration, ok: bool);
}

/// Drops every observation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl StoreMetrics for NoMetrics {
    fn observe(&self, _: &'static str, _: &'static str, _: Duration, _: bool) {}
}

/// A shared metrics sink.
pub type SharedMetrics = Arc<dyn StoreMetrics>;

/// Runs `fut`, reports its duration as `op` on `backend`, and returns its result.
pub async fn timed<T, E, F>(
    metrics: &dyn StoreMetrics,
    backend: &'static str,
    op: &'static str,
    fut: F,
) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let result = fut.await;
    metrics.observe(op, backend, start.elapsed(), result.is_ok());
    result
}
