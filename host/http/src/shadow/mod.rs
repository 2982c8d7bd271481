//! The shadow tee: a sampled share of client reads, once answered, sent again to each
//! `shadow.targets` entry (another Miroir or a Meilisearch), and the two answers compared —
//! hits only one side has, Kendall tau of the common ranking, totals, latency, errors. The
//! comparisons land in a bounded ring buffer (`GET /_miroir/shadow/diff`), an aggregate per
//! target (`GET /_miroir/shadow/summary`) and metrics.
//!
//! Off the client's path: the read layer ([`crate::after_response`]) hands the finished
//! exchange over with a non-blocking send into a bounded queue; a full queue drops the
//! comparison and counts it. At most [`CONCURRENCY`] comparisons run at once, each target
//! request with its own time limit, so a slow or dead target costs the client nothing. Writes
//! are never shadowed. Built into the gateway (not a WebAssembly plugin) so it can hold its
//! queue, ring buffer and outbound client across requests; it exists only when
//! `shadow.enabled`.

mod diff;
mod routes;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miroir_config::ShadowConfig;
use miroir_types::ReadExchange;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

pub(crate) use routes::{diff_route, summary_route};

use crate::AppState;

/// Comparisons waiting to run; past this, new ones are dropped and counted.
pub const QUEUE: usize = 1024;
/// Comparisons running at once.
pub const CONCURRENCY: usize = 16;
/// Time limit of one request to a target.
pub const TARGET_TIMEOUT: Duration = Duration::from_secs(10);
/// Latency differences kept per target for the summary's percentiles.
const LATENCIES: usize = 10_000;

/// One target, as configured, with its key read from the environment.
struct Target {
    name: String,
    base: String,
    key: Option<String>,
}

/// What one target's comparisons add up to.
#[derive(Default)]
struct TargetTally {
    compared: u64,
    identical: u64,
    errors: u64,
    tau_sum: f64,
    tau_count: u64,
    latency_deltas_ms: VecDeque<f64>,
}

/// A read to compare, with what the comparison needs of the gateway.
struct Job {
    state: AppState,
    exchange: ReadExchange,
}

/// Counts for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShadowStats {
    /// Reads sampled for shadowing.
    pub sampled: u64,
    /// Sampled reads dropped because [`QUEUE`] comparisons were waiting.
    pub dropped: u64,
    /// Per target: name, identical, differing, errors (no answer or an error status on one
    /// side), mean Kendall tau.
    pub targets: Vec<TargetStats>,
}

/// One target's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetStats {
    /// The target's name.
    pub name: String,
    /// Comparisons whose answers were the same.
    pub identical: u64,
    /// Comparisons whose answers differed (errors included).
    pub differing: u64,
    /// Comparisons where one side failed.
    pub errors: u64,
    /// Mean Kendall tau of the comparisons that had one.
    pub mean_tau: Option<f64>,
}

/// The shadow tee of this gateway instance.
pub struct ShadowTee {
    rate: f64,
    reads: AtomicU64,
    sampled: AtomicU64,
    dropped: AtomicU64,
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    targets: Vec<Target>,
    client: reqwest::Client,
    capacity: usize,
    next_id: AtomicU64,
    diffs: Mutex<VecDeque<Value>>,
    tallies: Mutex<HashMap<String, TargetTally>>,
}

impl ShadowTee {
    /// Starts the tee for `config` (its comparison workers run on the current tokio runtime).
    /// Each target's key is read from the variable its `api_key_env` names.
    pub fn start(config: &ShadowConfig) -> Arc<Self> {
        let targets = config
            .targets
            .iter()
            .map(|t| Target {
                name: t.name.clone(),
                base: t.address.trim_end_matches('/').to_owned(),
                key: t.api_key_env.as_ref().and_then(|var| std::env::var(var).ok()),
            })
            .collect();
        let client = reqwest::Client::builder()
            .timeout(TARGET_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let shared = Arc::new(Shared {
            targets,
            client,
            capacity: usize::try_from(config.diff_buffer).unwrap_or(1000).max(1),
            next_id: AtomicU64::new(0),
            diffs: Mutex::new(VecDeque::new()),
            tallies: Mutex::new(HashMap::new()),
        });
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(dispatch(Arc::clone(&shared), jobs));
        Arc::new(ShadowTee {
            rate: config.sample_rate.clamp(0.0, 1.0),
            reads: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            queue,
            shared,
        })
    }

    /// Whether the read `method path` is sampled: one the tee copies ([`is_shadowed`]), and
    /// then `sample_rate` of them.
    pub(crate) fn sample(&self, method: &str, path: &str) -> bool {
        is_shadowed(method, path) && self.sample_next()
    }

    /// Whether the next copyable read is sampled: exactly `sample_rate` of them, evenly spread
    /// (the n-th is taken when `floor(n × rate)` grows).
    fn sample_next(&self) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let n = self.reads.fetch_add(1, Ordering::Relaxed) as f64;
        let take = ((n + 1.0) * self.rate).floor() > (n * self.rate).floor();
        if take {
            self.sampled.fetch_add(1, Ordering::Relaxed);
        }
        take
    }

    /// Queues the comparison of a sampled read; never waits. A full queue drops it (counted).
    pub(crate) fn submit(&self, state: AppState, exchange: ReadExchange) {
        if self.queue.try_send(Job { state, exchange }).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "shadow comparisons dropped: {QUEUE} already waiting (a slow target?)"
                );
            }
        }
    }

    /// Counts for metrics.
    pub fn stats(&self) -> ShadowStats {
        let tallies = self.shared.tallies.lock().expect("tallies lock poisoned");
        ShadowStats {
            sampled: self.sampled.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            targets: self
                .shared
                .targets
                .iter()
                .map(|t| {
                    let tally = tallies.get(&t.name);
                    TargetStats {
                        name: t.name.clone(),
                        identical: tally.map_or(0, |t| t.identical),
                        differing: tally.map_or(0, |t| t.compared - t.identical),
                        errors: tally.map_or(0, |t| t.errors),
                        mean_tau: tally
                            .filter(|t| t.tau_count > 0)
                            .map(|t| t.tau_sum / t.tau_count as f64),
                    }
                })
                .collect(),
        }
    }

    /// The newest comparisons first, at most `limit`, of `index` only when given, differing
    /// ones only when `differs`.
    pub(crate) fn diffs(&self, index: Option<&str>, differs: bool, limit: usize) -> Vec<Value> {
        let diffs = self.shared.diffs.lock().expect("diffs lock poisoned");
        diffs
            .iter()
            .rev()
            .filter(|d| index.is_none_or(|index| d["index"] == index))
            .filter(|d| !differs || d["identical"] == false)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The aggregate per target.
    pub(crate) fn summary(&self) -> Value {
        let tallies = self.shared.tallies.lock().expect("tallies lock poisoned");
        let targets: Vec<Value> = self
            .shared
            .targets
            .iter()
            .map(|t| {
                let empty = TargetTally::default();
                let tally = tallies.get(&t.name).unwrap_or(&empty);
                let mut deltas: Vec<f64> = tally.latency_deltas_ms.iter().copied().collect();
                deltas.sort_by(f64::total_cmp);
                json!({
                    "target": t.name,
                    "compared": tally.compared,
                    "identical": tally.identical,
                    "shareIdentical": (tally.compared > 0).then(|| tally.identical as f64 / tally.compared as f64),
                    "errors": tally.errors,
                    "meanKendallTau": (tally.tau_count > 0).then(|| tally.tau_sum / tally.tau_count as f64),
                    "latencyDeltaMs": {
                        "p50": percentile(&deltas, 0.50),
                        "p99": percentile(&deltas, 0.99),
                    },
                })
            })
            .collect();
        json!({
            "sampleRate": self.rate,
            "sampled": self.sampled.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "targets": targets,
        })
    }
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Runs queued comparisons, [`CONCURRENCY`] at a time.
async fn dispatch(shared: Arc<Shared>, mut jobs: mpsc::Receiver<Job>) {
    let running = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = Arc::clone(&running).acquire_owned().await else { return };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            compare(&shared, job).await;
            drop(permit);
        });
    }
}

/// Whether a read is one the tee copies: searches, multi-search, facet search, similar
/// documents and document reads (not tasks, stats, settings or keys, whose answers are
/// per-deployment by nature).
pub(crate) fn is_shadowed(method: &str, path: &str) -> bool {
    if path == "/multi-search" {
        return method == "POST";
    }
    let Some(rest) = path.strip_prefix("/indexes/") else { return false };
    let mut parts = rest.split('/');
    let _index = parts.next();
    matches!(
        (method, parts.next(), parts.next(), parts.next()),
        ("GET" | "POST", Some("search" | "similar"), None, _)
            | ("POST", Some("facet-search"), None, _)
            | ("GET", Some("documents"), _, None)
            | ("POST", Some("documents"), Some("fetch"), None)
    )
}

/// The index a read path names (`/indexes/{uid}/...`).
fn index_of(path: &str) -> Option<&str> {
    path.strip_prefix("/indexes/")?.split('/').next().filter(|s| !s.is_empty())
}

/// Sends the read to every target at once and records one comparison per target.
async fn compare(shared: &Shared, job: Job) {
    let Job { state, exchange } = job;
    let index = index_of(&exchange.path).map(str::to_owned);
    let primary_key = match &index {
        // The read path's cached catalog: no task-store call per comparison.
        Some(uid) => crate::read_catalog::index_for_read(&state, uid)
            .await
            .ok()
            .and_then(|m| m.primary_key.clone()),
        None => None,
    };
    let sends = shared.targets.iter().map(|target| send(shared, target, &exchange));
    let answers = futures_util::future::join_all(sends).await;
    for (target, (status, body, error, took)) in shared.targets.iter().zip(answers) {
        let record = diff::compared(diff::Sides {
            index: index.as_deref(),
            primary_key: primary_key.as_deref(),
            exchange: &exchange,
            primary: &exchange.response_body,
            shadow_status: status,
            shadow: &body,
            shadow_error: error,
            shadow_took: took,
        });
        shared.record(&target.name, record);
    }
}

/// The target's answer to the same request: status (`0` when none came), body, the transport
/// error, the time it took.
async fn send(
    shared: &Shared,
    target: &Target,
    exchange: &ReadExchange,
) -> (u16, bytes::Bytes, Option<String>, Duration) {
    let mut url = format!("{}{}", target.base, exchange.path);
    if !exchange.query.is_empty() {
        url.push('?');
        url.push_str(&exchange.query);
    }
    let method =
        reqwest::Method::from_bytes(exchange.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = shared.client.request(method, url);
    if let Some((_, kind)) = exchange.headers.iter().find(|(name, _)| name == "content-type") {
        request = request.header(reqwest::header::CONTENT_TYPE, kind);
    }
    if let Some(key) = &target.key {
        request = request.bearer_auth(key);
    }
    if !exchange.body.is_empty() {
        request = request.body(exchange.body.clone());
    }
    let started = Instant::now();
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) => (status, body, None, started.elapsed()),
                Err(e) => (status, bytes::Bytes::new(), Some(e.to_string()), started.elapsed()),
            }
        }
        Err(e) => (0, bytes::Bytes::new(), Some(e.to_string()), started.elapsed()),
    }
}

impl Shared {
    fn record(&self, target: &str, mut record: diff::Compared) {
        {
            let mut tallies = self.tallies.lock().expect("tallies lock poisoned");
            let tally = tallies.entry(target.to_owned()).or_default();
            tally.compared += 1;
            tally.identical += u64::from(record.identical);
            tally.errors += u64::from(record.error_side.is_some());
            if let Some(tau) = record.tau {
                tally.tau_sum += tau;
                tally.tau_count += 1;
            }
            tally.latency_deltas_ms.push_back(record.latency_delta_ms);
            while tally.latency_deltas_ms.len() > LATENCIES {
                tally.latency_deltas_ms.pop_front();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        record.json["id"] = id.into();
        record.json["target"] = target.into();
        let mut diffs = self.diffs.lock().expect("diffs lock poisoned");
        diffs.push_back(record.json);
        while diffs.len() > self.capacity {
            diffs.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_searches_and_document_reads_are_shadowed() {
        for (method, path) in [
            ("POST", "/indexes/movies/search"),
            ("GET", "/indexes/movies/search"),
            ("POST", "/indexes/movies/facet-search"),
            ("POST", "/indexes/movies/similar"),
            ("GET", "/indexes/movies/documents"),
            ("GET", "/indexes/movies/documents/12"),
            ("POST", "/indexes/movies/documents/fetch"),
            ("POST", "/multi-search"),
        ] {
            assert!(is_shadowed(method, path), "{method} {path}");
        }
        for (method, path) in [
            ("GET", "/tasks/3"),
            ("GET", "/indexes/movies"),
            ("GET", "/indexes/movies/settings"),
            ("GET", "/indexes/movies/stats"),
            ("POST", "/indexes/movies/documents"),
            ("GET", "/keys"),
        ] {
            assert!(!is_shadowed(method, path), "{method} {path}");
        }
    }
}
