//! `multi_search`: the multi-search plugin (`POST /multi-search`).

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// The `multi_search` section. Enabling it loads `multi_search.wasm` from the plugins
/// directory (see [`crate::PluginsConfig::find_component`]).
///
/// On by default, since `POST /multi-search` is part of the Meilisearch API: when the flag is
/// left at its default and the component is not found, Miroir starts, logs a warning and
/// answers `miroir_plugin_unavailable` on the route; an explicit `enabled: true` with no
/// component is a configuration error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiSearchConfig {
    /// Whether the plugin is loaded. Default `true`.
    pub enabled: bool,
    /// Whether `enabled` was written in the configuration (file or environment) rather than
    /// left at its default; set when the configuration is loaded.
    #[serde(skip)]
    pub enabled_explicitly: bool,
    /// Most queries in one request. Default `100`.
    pub max_queries_per_batch: u32,
    /// Time limit of one query of the batch. Default `"5s"`.
    pub query_timeout: HumanDuration,
    /// Time limit of the whole batch. Default `"30s"`.
    pub total_timeout: HumanDuration,
}

impl Default for MultiSearchConfig {
    fn default() -> Self {
        MultiSearchConfig {
            enabled: true,
            enabled_explicitly: false,
            max_queries_per_batch: 100,
            query_timeout: HumanDuration::from_secs(5),
            total_timeout: HumanDuration::from_secs(30),
        }
    }
}

impl MultiSearchConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if !self.enabled {
            return;
        }
        if self.max_queries_per_batch == 0 {
            report.push("multi_search.max_queries_per_batch", "must be at least 1", "e.g. 100");
        }
        if self.query_timeout.is_zero() {
            report.push("multi_search.query_timeout", "must be longer than 0s", "e.g. \"5s\"");
        }
        if self.total_timeout.is_zero() {
            report.push("multi_search.total_timeout", "must be longer than 0s", "e.g. \"30s\"");
        } else if self.total_timeout < self.query_timeout {
            report.push(
                "multi_search.total_timeout",
                format!(
                    "{} is shorter than multi_search.query_timeout ({})",
                    self.total_timeout, self.query_timeout
                ),
                "the batch limit must leave room for at least one query",
            );
        }
    }
}
