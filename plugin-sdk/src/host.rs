//! What the host offers a plugin. Nothing else is reachable: no files, sockets or environment.

use serde_json::Value;

use crate::types::{HostError, ShardResponse};
use crate::wit::miroir::plugin as bindings;

/// Runs `request` (a Meilisearch search body) through the host's scatter-gather over every shard
/// of `index` and returns the merged response, as a client of Miroir would get it.
pub fn search(index: &str, request: &Value) -> Result<Value, HostError> {
    let text = bindings::search::search(index, &request.to_string())?;
    serde_json::from_str(&text).map_err(|e| HostError {
        status: 502,
        code: "invalid_response".into(),
        message: format!("the host's search answer is not JSON: {e}"),
    })
}

fn parse_answer(text: &str) -> Result<Value, HostError> {
    serde_json::from_str(text).map_err(|e| HostError {
        status: 502,
        code: "invalid_response".into(),
        message: format!("the host's search answer is not JSON: {e}"),
    })
}

/// Runs several searches at once through the host's scatter-gather, each as [`search`] does,
/// and returns their answers in the same order. Each search is bounded by `timeout_ms` (`None`:
/// the plugin's deadline); one that runs past it fails alone with a `miroir_timeout` error
/// (status 504).
pub fn search_batch(
    queries: &[(&str, &Value)],
    timeout_ms: Option<u32>,
) -> Vec<Result<Value, HostError>> {
    let queries: Vec<bindings::search::SearchQuery> = queries
        .iter()
        .map(|(index, request)| bindings::search::SearchQuery {
            index: (*index).to_owned(),
            request: request.to_string(),
        })
        .collect();
    bindings::search::search_batch(&queries, timeout_ms)
        .into_iter()
        .map(|answer| parse_answer(&answer?))
        .collect()
}

/// Runs a federated multi-search (`{"federation": {...}, "queries": [...]}`, each query with its
/// `indexUid`) over every shard and returns the merged response as one Meilisearch node answers
/// it, totals counting each document once. Bounded by `timeout_ms` like [`search_batch`]. A
/// query's error comes back with its Meilisearch status and an ``Inside `.queries[i]`: ``
/// message.
pub fn federated_search(request: &Value, timeout_ms: Option<u32>) -> Result<Value, HostError> {
    parse_answer(&bindings::search::federated_search(&request.to_string(), timeout_ms)?)
}

/// Sends `request` to every shard of `index` and returns each shard's raw answer, in shard order.
pub fn scatter(index: &str, request: &Value) -> Result<Vec<ShardResponse>, HostError> {
    let responses = bindings::search::scatter(index, &request.to_string())?;
    Ok(responses.into_iter().map(Into::into).collect())
}

/// Logging into the gateway's log, tagged with the plugin's name.
pub mod log {
    use crate::wit::miroir::plugin::log::{log, Level};

    /// Logs `message` at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }

    /// Logs `message` at info level.
    pub fn info(message: &str) {
        log(Level::Info, message);
    }

    /// Logs `message` at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }

    /// Logs `message` at error level.
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}

/// Metrics, exposed by the gateway as `miroir_plugin_<plugin>_<name>`.
pub mod metrics {
    use crate::wit::miroir::plugin::metrics as m;

    fn owned(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Adds `value` to counter `name`.
    pub fn counter_add(name: &str, value: u64, labels: &[(&str, &str)]) {
        m::counter_add(name, value, &owned(labels));
    }

    /// Records `value` in histogram `name`.
    pub fn histogram_observe(name: &str, value: f64, labels: &[(&str, &str)]) {
        m::histogram_observe(name, value, &owned(labels));
    }

    /// Sets gauge `name` to `value`.
    pub fn gauge_set(name: &str, value: f64, labels: &[(&str, &str)]) {
        m::gauge_set(name, value, &owned(labels));
    }
}

/// Outbound HTTP to the origins listed in the plugin's `config.http_targets`, and no others.
pub mod http {
    use crate::types::HostError;
    use crate::wit::miroir::plugin::http as h;

    /// A request to send.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Request {
        /// The method in upper case.
        pub method: String,
        /// The absolute URL.
        pub url: String,
        /// The headers.
        pub headers: Vec<(String, String)>,
        /// The body.
        pub body: Vec<u8>,
        /// A time limit in milliseconds, capped by the plugin's deadline.
        pub timeout_ms: Option<u32>,
    }

    impl Request {
        /// A `GET` of `url`.
        pub fn get(url: impl Into<String>) -> Self {
            Request { method: "GET".into(), url: url.into(), ..Request::default() }
        }

        /// A `POST` of a JSON `body` to `url`.
        pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
            Request {
                method: "POST".into(),
                url: url.into(),
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.to_string().into_bytes(),
                timeout_ms: None,
            }
        }
    }

    /// The answer to a [`Request`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// The headers, names in lower case.
        pub headers: Vec<(String, String)>,
        /// The body.
        pub body: Vec<u8>,
    }

    /// Sends `request`. A URL whose origin the plugin's config does not list fails with code
    /// `http_target_not_allowed` and never reaches the network.
    pub fn send(request: Request) -> Result<Response, HostError> {
        let response = h::send(&h::OutgoingRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout_ms: request.timeout_ms,
        })?;
        Ok(Response { status: response.status, headers: response.headers, body: response.body })
    }
}

/// The plugin's own key-value store, kept by the gateway and invisible to other plugins.
pub mod kv {
    use crate::types::HostError;
    use crate::wit::miroir::plugin::kv as k;

    /// The value of `key`, if set.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(k::get(key)?)
    }

    /// Sets `key` to `value`.
    pub fn put(key: &str, value: &[u8]) -> Result<(), HostError> {
        Ok(k::put(key, value)?)
    }

    /// Removes `key`.
    pub fn delete(key: &str) -> Result<(), HostError> {
        Ok(k::delete(key)?)
    }

    /// The keys starting with `prefix`, sorted.
    pub fn list_prefix(prefix: &str) -> Result<Vec<String>, HostError> {
        Ok(k::list_prefix(prefix)?)
    }
}

/// The host's clock.
pub mod clock {
    /// Wall-clock time in nanoseconds since the Unix epoch.
    pub fn now_ns() -> u64 {
        crate::wit::miroir::plugin::clock::now()
    }

    /// Wall-clock time in milliseconds since the Unix epoch.
    pub fn now_ms() -> u64 {
        now_ns() / 1_000_000
    }
}

/// Randomness from the host.
pub mod random {
    /// `len` random bytes (at most 65 536 per call).
    pub fn bytes(len: u32) -> Vec<u8> {
        crate::wit::miroir::plugin::random::bytes(len)
    }

    /// A random `u64`.
    pub fn u64() -> u64 {
        let bytes = bytes(8);
        let mut buf = [0u8; 8];
        buf.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(buf)
    }
}
