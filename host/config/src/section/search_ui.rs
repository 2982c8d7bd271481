//! `search_ui`: the end-user search page served by Miroir, and its per-IP rate limit.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::validate::check_url;

/// Where the rate limiter keeps its buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// In this instance's memory: the cluster-wide rate is `per_ip` × instances.
    Local,
    /// In Redis, shared by every instance: the cluster-wide rate is `per_ip`.
    Redis,
}

/// `search_ui.rate_limit`: a token bucket per client IP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests per second each IP may make in the long run. Default `10`.
    pub per_ip: f64,
    /// Requests an IP may make at once after being idle. Default `20`.
    pub burst: u32,
    /// `local` (default) or `redis`; more than one instance (`replicas` > 1) needs `redis`.
    pub backend: RateLimitBackend,
    /// The Redis URL of the `redis` backend. Default: `task_store.url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_ip: 10.0,
            burst: 20,
            backend: RateLimitBackend::Local,
            redis_url: None,
        }
    }
}

/// The `search_ui` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchUiConfig {
    /// Whether the page is served. Default `false`.
    pub enabled: bool,
    /// Where the page is served. Default `/_miroir/ui`.
    pub path: String,
    /// The indexes the page offers, first one shown first. Default: every index the key may
    /// search.
    pub indexes: Vec<String>,
    /// The key the page's searches are made with: a key whose actions are limited to `search`,
    /// or a tenant token. Never the master key. Required when enabled (or
    /// `MIROIR_SEARCH_UI__API_KEY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The per-IP limit of the page's requests.
    pub rate_limit: RateLimitConfig,
    /// Proxies (IP addresses or CIDR ranges) whose `X-Forwarded-For` names the client. Default:
    /// none, the client is the socket's peer.
    pub trusted_proxies: Vec<String>,
}

impl Default for SearchUiConfig {
    fn default() -> Self {
        SearchUiConfig {
            enabled: false,
            path: "/_miroir/ui".to_owned(),
            indexes: Vec::new(),
            api_key: None,
            rate_limit: RateLimitConfig::default(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Paths the page may not take: Meilisearch's own routes would be hidden behind it.
const TAKEN_PREFIXES: &[&str] = &[
    "/indexes",
    "/tasks",
    "/keys",
    "/health",
    "/version",
    "/stats",
    "/multi-search",
    "/batches",
    "/dumps",
    "/snapshots",
    "/metrics",
    "/experimental-features",
    "/network",
    "/swap-indexes",
    "/webhooks",
    "/_indexes",
];

impl SearchUiConfig {
    /// Checks the section; `replicas` and the task store's Redis URL come from elsewhere.
    pub(crate) fn validate(
        &self,
        report: &mut Report,
        replicas: u32,
        store_redis_url: Option<&str>,
        master_key: Option<&str>,
    ) {
        if !self.enabled {
            return;
        }
        let path = self.path.trim_end_matches('/');
        let plain = path.chars().all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c));
        if !path.starts_with('/') || path.len() < 2 || !plain {
            report.push(
                "search_ui.path",
                format!(
                    "`{}` is not an absolute path of letters, digits, `/`, `_`, `-`, `.`",
                    self.path
                ),
                "e.g. /_miroir/ui",
            );
        } else if TAKEN_PREFIXES.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))) {
            report.push(
                "search_ui.path",
                format!("`{}` would hide a Meilisearch route", self.path),
                "use a path of its own, e.g. /_miroir/ui or /search",
            );
        }
        match self.api_key.as_deref().map(str::trim) {
            None | Some("") => report.push(
                "search_ui.api_key",
                "the search page needs a key to search with",
                "create a key with actions [\"search\"] and set search_ui.api_key (or \
                 MIROIR_SEARCH_UI__API_KEY) to it",
            ),
            Some(key) if master_key == Some(key) => report.push(
                "search_ui.api_key",
                "is the master key: every visitor of the page could use it",
                "create a key with actions [\"search\"] and use that",
            ),
            Some(_) => {}
        }
        let limit = &self.rate_limit;
        if !(limit.per_ip.is_finite() && limit.per_ip > 0.0) {
            report.push(
                "search_ui.rate_limit.per_ip",
                format!("{} is not a positive rate", limit.per_ip),
                "requests per second per IP, e.g. 10",
            );
        }
        if limit.burst == 0 {
            report.push("search_ui.rate_limit.burst", "must be at least 1", "e.g. 20");
        }
        match limit.backend {
            RateLimitBackend::Local if replicas > 1 => report.push(
                "search_ui.rate_limit.backend",
                format!(
                    "local buckets are per instance: with {replicas} instances each IP could \
                     make {replicas} × per_ip requests per second"
                ),
                "set search_ui.rate_limit.backend: redis",
            ),
            RateLimitBackend::Local => {}
            RateLimitBackend::Redis => match limit.redis_url.as_deref().or(store_redis_url) {
                Some(url) => check_url(
                    report,
                    "search_ui.rate_limit.redis_url",
                    url,
                    &["redis", "rediss", "unix"],
                ),
                None => report.push(
                    "search_ui.rate_limit.redis_url",
                    "the redis backend needs a URL",
                    "set search_ui.rate_limit.redis_url, or use a Redis task store",
                ),
            },
        }
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            let parsed =
                proxy.parse::<ipnet::IpNet>().is_ok() || proxy.parse::<std::net::IpAddr>().is_ok();
            if !parsed {
                report.push(
                    format!("search_ui.trusted_proxies[{i}]"),
                    format!("`{proxy}` is not an IP address or CIDR range"),
                    "e.g. 10.0.0.0/8 or 192.168.1.10",
                );
            }
        }
    }
}
