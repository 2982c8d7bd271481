//! Miroir's typed configuration.
//!
//! This crate owns the shape of the configuration (one module per section, every struct with
//! `#[serde(deny_unknown_fields)]`), how it is loaded, and [`Config::validate`], which reports
//! every problem at once, each with its key path and a hint. It does not act on the configuration:
//! nothing here opens sockets, stores or plugins (it only checks that plugin files exist).
//!
//! # Loading
//!
//! [`Config::load`] layers, with figment: the defaults of every section, then the file given with
//! `--config` (YAML, or TOML when the name ends in `.toml`), then environment variables named
//! `MIROIR_<SECTION>__<KEY>` (`__` separates levels: `MIROIR_SERVER__PORT=8080` sets
//! `server.port`). Relative paths written in the file (`task_store.path`, `plugins.dir`,
//! `plugins.custom[].component`) are relative to the file's directory; relative paths from the
//! environment are relative to the working directory.
//!
//! Secrets are read only from the environment ([`Secrets`]): `MIROIR_MASTER_KEY`,
//! `MIROIR_ADMIN_API_KEY`, `MIROIR_NODE_MASTER_KEY`. A file that sets one is refused.
//!
//! # Units
//!
//! Durations are humantime strings (`"500ms"`, `"30s"`, `"24h"`, `"7d"`, see [`HumanDuration`]),
//! except fields whose name ends in `_ms`, which are integer milliseconds. Sizes are integer
//! bytes (`*_bytes`) or MiB (`*_mb`).

mod duration;
mod error;
mod load;
mod secrets;
mod section;
mod validate;

use std::collections::BTreeMap;

use miroir_types::GroupId;
use serde::{Deserialize, Serialize};

pub use duration::HumanDuration;
pub use error::{ConfigError, Problem};
pub use load::{figment, ENV_PREFIX};
pub use secrets::{Secret, Secrets, ADMIN_API_KEY_ENV, MASTER_KEY_ENV, NODE_MASTER_KEY_ENV};
pub use section::*;

/// The whole configuration of one Miroir instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The client-facing listener.
    pub server: ServerConfig,
    /// The Meilisearch nodes. At least one is required.
    pub nodes: Vec<NodeConfig>,
    /// Shard count of newly created indexes. Default `64`.
    pub shards: u32,
    /// Nodes holding each shard inside one replica group. Default `1`.
    pub replication_factor: u32,
    /// Owners of a shard (in one group) that must accept a write: `one` (default), `majority`
    /// or `all`.
    pub write_quorum: WriteQuorum,
    /// How many Miroir instances share the task store. Default `1`; more needs Redis.
    pub replicas: u32,
    /// This instance's name in leases and logs. Default: chosen at start.
    #[serde(deserialize_with = "load::optional_string_or_number")]
    pub instance_id: Option<String>,
    /// Where tasks and shared state live.
    pub task_store: TaskStoreConfig,
    /// Node health probing.
    pub health: HealthConfig,
    /// Search fan-out.
    pub scatter: ScatterConfig,
    /// Shard moves and the settings drift check.
    pub rebalancer: RebalancerConfig,
    /// The leader lease.
    pub leader: LeaderConfig,
    /// `Idempotency-Key` memory.
    pub idempotency: IdempotencyConfig,
    /// Read-your-writes sessions.
    pub session_pinning: SessionPinningConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// The Prometheus port.
    pub metrics: MetricsConfig,
    /// The multi-search plugin.
    pub multi_search: MultiSearchConfig,
    /// The vector-search plugin.
    pub vector_search: VectorSearchConfig,
    /// The shadow-tee plugin.
    pub shadow: ShadowConfig,
    /// The change-data-capture plugin.
    pub cdc: CdcConfig,
    /// The end-user search page.
    pub search_ui: SearchUiConfig,
    /// Index lifecycle policies (rollover, retention).
    pub ilm: IlmConfig,
    /// Shared plugin settings and the user's plugins.
    pub plugins: PluginsConfig,
    /// Keys from the environment; never serialized, never read from the file.
    #[serde(skip)]
    pub secrets: Secrets,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            nodes: Vec::new(),
            shards: 64,
            replication_factor: 1,
            write_quorum: WriteQuorum::One,
            replicas: 1,
            instance_id: None,
            task_store: TaskStoreConfig::default(),
            health: HealthConfig::default(),
            scatter: ScatterConfig::default(),
            rebalancer: RebalancerConfig::default(),
            leader: LeaderConfig::default(),
            idempotency: IdempotencyConfig::default(),
            session_pinning: SessionPinningConfig::default(),
            telemetry: TelemetryConfig::default(),
            metrics: MetricsConfig::default(),
            multi_search: MultiSearchConfig::default(),
            vector_search: VectorSearchConfig::default(),
            shadow: ShadowConfig::default(),
            cdc: CdcConfig::default(),
            search_ui: SearchUiConfig::default(),
            ilm: IlmConfig::default(),
            plugins: PluginsConfig::default(),
            secrets: Secrets::default(),
        }
    }
}

/// The first-party plugins, by config section; each one's component is
/// `<plugins.dir>/<name>.wasm`.
pub const FIRST_PARTY_PLUGINS: &[&str] = &["multi_search", "vector_search"];

/// The optional features built into the gateway rather than loaded as plugins (they need
/// sockets, durable ordered storage or waiting readers, which the sandbox does not give): each
/// runs only when its section's `enabled` is on. Their names are reserved like the plugins'.
pub const BUILT_IN_FEATURES: &[&str] = &["shadow", "cdc"];

impl Config {
    /// The nodes of each replica group, by group name. Nodes without a group are left out.
    pub fn replica_groups(&self) -> BTreeMap<&GroupId, Vec<&NodeConfig>> {
        let mut groups: BTreeMap<&GroupId, Vec<&NodeConfig>> = BTreeMap::new();
        for node in &self.nodes {
            if let Some(group) = &node.replica_group {
                groups.entry(group).or_default().push(node);
            }
        }
        groups
    }

    /// The first-party plugins to load, by name (see [`FIRST_PARTY_PLUGINS`]): each whose flag
    /// is on, except a feature on by default whose component is not installed (see
    /// [`Config::unavailable_features`]).
    pub fn enabled_features(&self) -> Vec<&'static str> {
        let unavailable = self.unavailable_features();
        self.feature_flags()
            .filter(|(name, on, _)| *on && !unavailable.contains(name))
            .map(|(name, _, _)| name)
            .collect()
    }

    /// The first-party features left on by default (not written in the configuration) whose
    /// component is not found: Miroir starts without them, warns, and their routes answer
    /// `miroir_plugin_unavailable`. An explicitly enabled feature without its component is a
    /// configuration error instead.
    pub fn unavailable_features(&self) -> Vec<&'static str> {
        self.feature_flags()
            .filter(|(name, on, explicit)| {
                *on && !*explicit && self.plugins.find_component(name).is_none()
            })
            .map(|(name, _, _)| name)
            .collect()
    }

    /// Each first-party feature: name, flag, whether the flag was written in the configuration
    /// (features that are off by default are only on when written).
    fn feature_flags(&self) -> impl Iterator<Item = (&'static str, bool, bool)> {
        let flags = [
            (self.multi_search.enabled, self.multi_search.enabled_explicitly),
            (self.vector_search.enabled, true),
        ];
        FIRST_PARTY_PLUGINS.iter().zip(flags).map(|(name, (on, explicit))| (*name, on, explicit))
    }

    /// One line describing the topology and store, e.g.
    /// `3 nodes in 2 replica groups, 64 shards, RF 1, task store sqlite (miroir.db)`.
    pub fn summary(&self) -> String {
        let nodes = self.nodes.len();
        let groups = self.replica_groups().len();
        let store = match self.task_store.backend {
            TaskStoreBackend::Sqlite => format!("sqlite ({})", self.task_store.path.display()),
            TaskStoreBackend::Redis => "redis".to_owned(),
        };
        let mut line = format!(
            "{nodes} node{} in {groups} replica group{}, {} shards, RF {}, task store {store}",
            plural(nodes),
            plural(groups),
            self.shards,
            self.replication_factor,
        );
        if self.replicas > 1 {
            line.push_str(&format!(", {} replicas", self.replicas));
        }
        let features = self.enabled_features();
        let custom = self.plugins.custom.iter().filter(|p| p.enabled).count();
        if !features.is_empty() || custom > 0 {
            line.push_str(&format!(", plugins: {}", features.join(" ")));
            if custom > 0 {
                line.push_str(&format!(
                    "{}{custom} custom",
                    if features.is_empty() { "" } else { " + " }
                ));
            }
        }
        line
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
