//! The port through which plugins reach the rest of the gateway, and an in-memory implementation.
//!
//! The runtime never talks to nodes, the task store or the network policy of the gateway itself:
//! every service a plugin imports goes through [`PluginHost`], which the gateway implements with
//! its scatter-gather and task store. [`InMemoryHost`] implements it with fixed answers and a map,
//! for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::HostCallError;

/// One shard's raw answer, as the plugin's `scatter` import returns it and `merge-search`
/// receives it (the hook port's type).
pub use miroir_types::ShardAnswer;

/// An outbound HTTP request of a plugin, already checked against its allowed targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method in upper case.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The answer to an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A metric sample a plugin recorded; the gateway exposes it under the plugin's name.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// What kind of metric, and the value.
    pub kind: MetricKind,
    /// The metric's name as the plugin gave it.
    pub name: String,
    /// The labels.
    pub labels: Vec<(String, String)>,
}

/// The three kinds of plugin metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// Add this to a counter.
    Counter(u64),
    /// Observe this in a histogram.
    Histogram(f64),
    /// Set a gauge to this.
    Gauge(f64),
}

/// The gateway's services, as plugins see them. Every method receives the configured name of
/// the calling plugin where the service is namespaced per plugin.
#[async_trait]
pub trait PluginHost: Send + Sync + 'static {
    /// Runs a search over every shard of `index` and returns the merged response, for `plugin`:
    /// the search hooks of other plugins apply, `plugin`'s own never do.
    async fn search(
        &self,
        plugin: &str,
        index: &str,
        request: Value,
    ) -> Result<Value, HostCallError>;

    /// Sends a search to every shard of `index` and returns the raw answers in shard order.
    async fn scatter(&self, index: &str, request: Value)
        -> Result<Vec<ShardAnswer>, HostCallError>;

    /// Runs a federated multi-search (`{federation, queries}`) over every shard of every index
    /// it names and returns the merged federated response, with totals counting each document
    /// once. Default: not offered (`501`), for hosts without a cluster behind them.
    async fn federated_search(&self, request: Value) -> Result<Value, HostCallError> {
        let _ = request;
        Err(HostCallError::new(501, "not_implemented", "this host does not offer federated search"))
    }

    /// The value of `key` in `plugin`'s namespace.
    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, HostCallError>;

    /// Sets `key` in `plugin`'s namespace.
    async fn kv_put(&self, plugin: &str, key: &str, value: Vec<u8>) -> Result<(), HostCallError>;

    /// Removes `key` from `plugin`'s namespace.
    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), HostCallError>;

    /// The keys of `plugin`'s namespace that start with `prefix`, sorted.
    async fn kv_list_prefix(
        &self,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, HostCallError>;

    /// Sends an HTTP request. The runtime calls this only for targets the plugin's configuration
    /// allows, and bounds it with `timeout`.
    async fn http_send(
        &self,
        plugin: &str,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, HostCallError> {
        let _ = plugin;
        send_http(&reqwest::Client::new(), request, timeout).await
    }

    /// Records a metric sample of `plugin`. Default: dropped.
    fn record_metric(&self, plugin: &str, sample: MetricSample) {
        let _ = (plugin, sample);
    }

    /// Records one call of `plugin`'s `hook` (`handle`, `plan-search`, ...): how long it took and
    /// whether the sandbox stopped it (trap, deadline, memory; a hook's own error answer is not
    /// a failure). Default: dropped.
    fn record_call(&self, plugin: &str, hook: &'static str, took: Duration, failed: bool) {
        let _ = (plugin, hook, took, failed);
    }
}

/// Sends `request` with `client`; the default of [`PluginHost::http_send`].
pub async fn send_http(
    client: &reqwest::Client,
    request: HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, HostCallError> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| HostCallError::new(400, "bad_request", "not an HTTP method"))?;
    let mut builder = client.request(method, &request.url).timeout(timeout).body(request.body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.map_err(|e| {
        let (status, code) = if e.is_timeout() { (504, "timeout") } else { (502, "unavailable") };
        HostCallError::new(status, code, e.to_string())
    })?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response
        .bytes()
        .await
        .map_err(|e| HostCallError::new(502, "unavailable", e.to_string()))?
        .to_vec();
    Ok(HttpResponse { status, headers, body })
}

/// A [`PluginHost`] that answers searches (and federated searches) from fixed data and keeps
/// key-value data and metrics in memory. Its `http_send` is real (through `reqwest`), so tests can check target policy
/// against a local server.
#[derive(Debug, Default)]
pub struct InMemoryHost {
    searches: Mutex<BTreeMap<String, Value>>,
    shards: Mutex<BTreeMap<String, Vec<ShardAnswer>>>,
    federated: Mutex<Option<Value>>,
    federated_requests: Mutex<Vec<Value>>,
    kv: Mutex<BTreeMap<(String, String), Vec<u8>>>,
    metrics: Mutex<Vec<(String, MetricSample)>>,
    calls: Mutex<Vec<(String, &'static str, bool)>>,
    client: reqwest::Client,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test thread that panicked while holding the lock leaves consistent data behind.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InMemoryHost {
    /// An empty host: every index is missing, the key-value store is empty.
    pub fn new() -> Self {
        InMemoryHost::default()
    }

    /// Makes `search` on `index` answer `response`, and `scatter` answer `shards`.
    pub fn with_index(self, index: &str, response: Value, shards: Vec<ShardAnswer>) -> Self {
        lock(&self.searches).insert(index.to_owned(), response);
        lock(&self.shards).insert(index.to_owned(), shards);
        self
    }

    /// Makes `federated_search` answer `response` (and record each request it receives).
    pub fn with_federated(self, response: Value) -> Self {
        *lock(&self.federated) = Some(response);
        self
    }

    /// The requests `federated_search` received, in order.
    pub fn federated_requests(&self) -> Vec<Value> {
        lock(&self.federated_requests).clone()
    }

    /// The value of `key` in `plugin`'s namespace.
    pub fn kv_value(&self, plugin: &str, key: &str) -> Option<Vec<u8>> {
        lock(&self.kv).get(&(plugin.to_owned(), key.to_owned())).cloned()
    }

    /// Every metric sample recorded so far, with the plugin that recorded it.
    pub fn metrics(&self) -> Vec<(String, MetricSample)> {
        lock(&self.metrics).clone()
    }

    /// Every plugin call reported so far: plugin, hook, whether the sandbox stopped it.
    pub fn calls(&self) -> Vec<(String, &'static str, bool)> {
        lock(&self.calls).clone()
    }
}

fn index_not_found(index: &str) -> HostCallError {
    HostCallError::new(404, "index_not_found", format!("Index `{index}` not found."))
}

#[async_trait]
impl PluginHost for InMemoryHost {
    async fn search(
        &self,
        _plugin: &str,
        index: &str,
        request: Value,
    ) -> Result<Value, HostCallError> {
        let mut response =
            lock(&self.searches).get(index).cloned().ok_or_else(|| index_not_found(index))?;
        if let (Some(object), Some(q)) = (response.as_object_mut(), request.get("q")) {
            object.insert("query".into(), q.clone());
        }
        Ok(response)
    }

    async fn scatter(
        &self,
        index: &str,
        _request: Value,
    ) -> Result<Vec<ShardAnswer>, HostCallError> {
        lock(&self.shards).get(index).cloned().ok_or_else(|| index_not_found(index))
    }

    async fn federated_search(&self, request: Value) -> Result<Value, HostCallError> {
        lock(&self.federated_requests).push(request);
        lock(&self.federated).clone().ok_or_else(|| {
            HostCallError::new(501, "not_implemented", "no federated answer was configured")
        })
    }

    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, HostCallError> {
        Ok(self.kv_value(plugin, key))
    }

    async fn kv_put(&self, plugin: &str, key: &str, value: Vec<u8>) -> Result<(), HostCallError> {
        lock(&self.kv).insert((plugin.to_owned(), key.to_owned()), value);
        Ok(())
    }

    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), HostCallError> {
        lock(&self.kv).remove(&(plugin.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn kv_list_prefix(
        &self,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, HostCallError> {
        Ok(lock(&self.kv)
            .keys()
            .filter(|(p, k)| p == plugin && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .collect())
    }

    async fn http_send(
        &self,
        _plugin: &str,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, HostCallError> {
        send_http(&self.client, request, timeout).await
    }

    fn record_metric(&self, plugin: &str, sample: MetricSample) {
        lock(&self.metrics).push((plugin.to_owned(), sample));
    }

    fn record_call(&self, plugin: &str, hook: &'static str, _took: Duration, failed: bool) {
        lock(&self.calls).push((plugin.to_owned(), hook, failed));
    }
}
