//! What to load: [`PluginSpec`], built from the configuration or by hand.

use std::path::PathBuf;
use std::time::Duration;

use miroir_config::Config;
use serde_json::Value;

use crate::error::LoadError;
use crate::imports::origin_of;

/// How much longer than `multi_search.total_timeout` the multi-search plugin's call may run: time
/// to build its `miroir_timeout` answer after the host's searches were cut.
const MULTI_SEARCH_MARGIN: Duration = Duration::from_millis(500);

/// One plugin to load: which component, its limits, its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The configured name; namespaces key-value data and metrics.
    pub name: String,
    /// The component file (`.wasm`).
    pub component: PathBuf,
    /// Deadline of one call.
    pub deadline: Duration,
    /// Memory cap of one instance, in MiB.
    pub memory_mb: u64,
    /// The JSON object given to the plugin's `init`.
    pub config: Value,
    /// URLs whose origins (`scheme://host:port`) the plugin's `http.send` may reach; paths are
    /// ignored.
    pub http_targets: Vec<String>,
}

impl PluginSpec {
    /// A plugin with the default limits (1 s, 64 MiB), an empty configuration and no HTTP target.
    pub fn new(name: impl Into<String>, component: impl Into<PathBuf>) -> Self {
        PluginSpec {
            name: name.into(),
            component: component.into(),
            deadline: Duration::from_millis(1000),
            memory_mb: 64,
            config: Value::Object(serde_json::Map::new()),
            http_targets: Vec::new(),
        }
    }

    /// The plugins `config` enables: each first-party feature with `enabled: true`
    /// (`<plugins.dir>/<feature>.wasm`, its section as configuration) and each enabled entry of
    /// `plugins.custom` (its `config`, whose `http_targets` lists the origins it may reach).
    pub fn from_config(config: &Config) -> Result<Vec<PluginSpec>, LoadError> {
        let plugins = &config.plugins;
        let mut specs = Vec::new();
        for feature in config.enabled_features() {
            let (section, targets) = match feature {
                "multi_search" => (serde_json::to_value(&config.multi_search), Vec::new()),
                "vector_search" => (serde_json::to_value(&config.vector_search), Vec::new()),
                _ => continue,
            };
            let section = section.map_err(|e| LoadError::Start {
                plugin: feature.to_owned(),
                message: format!("cannot serialize its configuration: {e}"),
            })?;
            let mut deadline = Duration::from_millis(plugins.deadline_ms);
            if feature == "multi_search" {
                // The plugin answers `miroir_timeout` itself when the batch runs past
                // `total_timeout`: its call must not be cut first.
                let total: Duration = config.multi_search.total_timeout.into();
                deadline = deadline.max(total + MULTI_SEARCH_MARGIN);
            }
            specs.push(PluginSpec {
                name: feature.to_owned(),
                component: plugins.component_path(feature),
                deadline,
                memory_mb: plugins.memory_mb,
                http_targets: targets,
                config: section,
            });
        }
        for custom in plugins.custom.iter().filter(|p| p.enabled) {
            let targets: Vec<String> = match custom.config.get("http_targets") {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| not_origins(&custom.name))?,
                Some(_) => return Err(not_origins(&custom.name)),
            };
            specs.push(PluginSpec {
                name: custom.name.clone(),
                component: custom.component.clone(),
                deadline: Duration::from_millis(plugins.deadline_ms_of(custom)),
                memory_mb: plugins.memory_mb_of(custom),
                config: custom.config.clone(),
                http_targets: targets,
            });
        }
        Ok(specs)
    }
}

fn not_origins(plugin: &str) -> LoadError {
    LoadError::Start {
        plugin: plugin.to_owned(),
        message: "config.http_targets must be a list of URLs, e.g. [\"http://shadow:7700\"]".into(),
    }
}

pub(crate) fn origins(plugin: &str, urls: &[String]) -> Result<Vec<String>, LoadError> {
    urls.iter()
        .map(|url| {
            origin_of(url).ok_or_else(|| LoadError::Start {
                plugin: plugin.to_owned(),
                message: format!("http target `{url}` is not an http(s) URL"),
            })
        })
        .collect()
}
