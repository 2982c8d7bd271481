//! The host side of the world's imports: what a plugin can call, implemented on the state of its
//! store. Every service goes through [`PluginHost`]; `http` is checked against the plugin's allowed
//! targets here, before the host ever sees the request.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::bindings::miroir::plugin::{clock, http, kv, log, metrics, random, search, types};
use crate::error::HostCallError;
use crate::host::{HttpRequest, MetricKind, MetricSample, PluginHost};
use crate::limits::MemoryLimiter;

/// Longest log line kept; the rest is cut.
const MAX_LOG_BYTES: usize = 16 * 1024;
/// Most random bytes returned by one call.
const MAX_RANDOM_BYTES: u32 = 64 * 1024;

/// What every instance of one plugin shares: its name, limits and services.
#[derive(Clone)]
pub(crate) struct PluginContext {
    /// The configured name: namespaces key-value data and metrics.
    pub name: Arc<str>,
    /// Deadline of one call.
    pub deadline: Duration,
    /// Origins (`scheme://host:port`) the plugin may send HTTP requests to.
    pub http_targets: Arc<[String]>,
    /// The gateway's services.
    pub host: Arc<dyn PluginHost>,
}

/// The data of one plugin instance's store.
pub(crate) struct StoreState {
    pub context: PluginContext,
    pub limiter: MemoryLimiter,
}

fn wit_error(e: HostCallError) -> types::HostError {
    types::HostError { status: e.status, code: e.code, message: e.message }
}

fn parse_json(text: &str) -> Result<Value, types::HostError> {
    serde_json::from_str(text).map_err(|e| types::HostError {
        status: 400,
        code: "bad_request".into(),
        message: format!("the request is not JSON: {e}"),
    })
}

impl types::Host for StoreState {}

impl log::Host for StoreState {
    fn log(&mut self, level: log::Level, mut message: String) {
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = &*self.context.name;
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl StoreState {
    fn metric(&self, kind: MetricKind, name: String, labels: Vec<(String, String)>) {
        self.context.host.record_metric(&self.context.name, MetricSample { kind, name, labels });
    }
}

impl metrics::Host for StoreState {
    fn counter_add(&mut self, name: String, value: u64, labels: Vec<(String, String)>) {
        self.metric(MetricKind::Counter(value), name, labels);
    }

    fn histogram_observe(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        self.metric(MetricKind::Histogram(value), name, labels);
    }

    fn gauge_set(&mut self, name: String, value: f64, labels: Vec<(String, String)>) {
        self.metric(MetricKind::Gauge(value), name, labels);
    }
}

/// The `host-error` of a host call that ran past `timeout`.
fn timed_out(timeout: Duration) -> types::HostError {
    types::HostError {
        status: 504,
        code: "miroir_timeout".into(),
        message: format!("the search took longer than {} ms", timeout.as_millis()),
    }
}

impl StoreState {
    /// `timeout-ms` of a call, capped at the plugin's deadline.
    fn call_timeout(&self, timeout_ms: Option<u32>) -> Duration {
        timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)).min(self.context.deadline))
            .unwrap_or(self.context.deadline)
    }
}

impl search::Host for StoreState {
    async fn search_batch(
        &mut self,
        queries: Vec<search::SearchQuery>,
        timeout_ms: Option<u32>,
    ) -> Vec<Result<String, types::HostError>> {
        let timeout = self.call_timeout(timeout_ms);
        // One task per query, so that they run at once (the node requests of each overlap).
        let tasks: Vec<_> = queries
            .into_iter()
            .map(|query| {
                let host = Arc::clone(&self.context.host);
                let plugin = Arc::clone(&self.context.name);
                tokio::spawn(async move {
                    let request = parse_json(&query.request)?;
                    let search = host.search(&plugin, &query.index, request);
                    match tokio::time::timeout(timeout, search).await {
                        Ok(answer) => answer.map(|v| v.to_string()).map_err(wit_error),
                        Err(_elapsed) => Err(timed_out(timeout)),
                    }
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.unwrap_or_else(|e| {
                Err(types::HostError {
                    status: 500,
                    code: "internal".into(),
                    message: format!("the search task failed: {e}"),
                })
            }));
        }
        answers
    }

    async fn federated_search(
        &mut self,
        request: String,
        timeout_ms: Option<u32>,
    ) -> Result<String, types::HostError> {
        let request = parse_json(&request)?;
        let timeout = self.call_timeout(timeout_ms);
        let host = Arc::clone(&self.context.host);
        match tokio::time::timeout(timeout, host.federated_search(request)).await {
            Ok(answer) => answer.map(|v| v.to_string()).map_err(wit_error),
            Err(_elapsed) => Err(timed_out(timeout)),
        }
    }

    async fn search(&mut self, index: String, request: String) -> Result<String, types::HostError> {
        let request = parse_json(&request)?;
        let host = Arc::clone(&self.context.host);
        let plugin = &self.context.name;
        host.search(plugin, &index, request).await.map(|v| v.to_string()).map_err(wit_error)
    }

    async fn scatter(
        &mut self,
        index: String,
        request: String,
    ) -> Result<Vec<types::ShardResponse>, types::HostError> {
        let request = parse_json(&request)?;
        let host = Arc::clone(&self.context.host);
        let answers = host.scatter(&index, request).await.map_err(wit_error)?;
        Ok(answers
            .into_iter()
            .map(|a| types::ShardResponse {
                shard: a.shard,
                node: a.node,
                status: a.status,
                body: a.body.to_string(),
                took_us: u64::try_from(a.took.as_micros()).unwrap_or(u64::MAX),
            })
            .collect())
    }
}

/// The origin of `url` (`scheme://host:port`, default port made explicit), if it is an absolute
/// http(s) URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    Some(format!("{}://{}:{}", url.scheme(), host.to_ascii_lowercase(), port))
}

impl http::Host for StoreState {
    async fn send(
        &mut self,
        request: http::OutgoingRequest,
    ) -> Result<http::IncomingResponse, types::HostError> {
        let allowed = origin_of(&request.url)
            .is_some_and(|origin| self.context.http_targets.contains(&origin));
        if !allowed {
            tracing::warn!(plugin = &*self.context.name, url = %request.url, "http target refused");
            return Err(types::HostError {
                status: 403,
                code: "http_target_not_allowed".into(),
                message: format!(
                    "`{}` is not among this plugin's http_targets; add its origin to the plugin's \
                     config to allow it",
                    request.url
                ),
            });
        }
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)).min(self.context.deadline))
            .unwrap_or(self.context.deadline);
        let host = Arc::clone(&self.context.host);
        let outgoing = HttpRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        let response =
            host.http_send(&self.context.name, outgoing, timeout).await.map_err(wit_error)?;
        Ok(http::IncomingResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

impl kv::Host for StoreState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, types::HostError> {
        let host = Arc::clone(&self.context.host);
        host.kv_get(&self.context.name, &key).await.map_err(wit_error)
    }

    async fn put(&mut self, key: String, value: Vec<u8>) -> Result<(), types::HostError> {
        let host = Arc::clone(&self.context.host);
        host.kv_put(&self.context.name, &key, value).await.map_err(wit_error)
    }

    async fn delete(&mut self, key: String) -> Result<(), types::HostError> {
        let host = Arc::clone(&self.context.host);
        host.kv_delete(&self.context.name, &key).await.map_err(wit_error)
    }

    async fn list_prefix(&mut self, prefix: String) -> Result<Vec<String>, types::HostError> {
        let host = Arc::clone(&self.context.host);
        host.kv_list_prefix(&self.context.name, &prefix).await.map_err(wit_error)
    }
}

impl clock::Host for StoreState {
    fn now(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

impl random::Host for StoreState {
    fn bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        random_bytes(len.min(MAX_RANDOM_BYTES) as usize)
    }
}

/// `len` bytes from the operating system's generator. If it ever fails, the plugin traps rather
/// than receive bytes it believes random.
pub(crate) fn random_bytes(len: usize) -> wasmtime::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).map_err(|e| {
        wasmtime::format_err!("the operating system's random generator failed: {e}")
    })?;
    Ok(buf)
}
