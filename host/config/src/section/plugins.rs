//! `plugins`: what every plugin shares, and the user's own plugins.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Report;

/// A plugin written by the user, listed under `plugins.custom`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPlugin {
    /// Unique name: lowercase letters, digits, `-` and `_`. Its metrics and key-value data are
    /// namespaced under it. Required.
    pub name: String,
    /// Path of the compiled component (`.wasm`). Required.
    pub component: PathBuf,
    /// Whether the plugin is loaded. Default `true`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Deadline of one call, in milliseconds. Default: `plugins.deadline_ms`.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// Memory cap of one instance, in MiB. Default: `plugins.memory_mb`.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Any JSON, handed to the plugin when it is loaded. Default `{}`.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn default_true() -> bool {
    true
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The `plugins` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of the first-party components (`multi_search.wasm`, `vector_search.wasm`,
    /// `shadow.wasm`, `cdc.wasm`). Default `plugins`.
    pub dir: PathBuf,
    /// Default deadline of one plugin call, in milliseconds. Default `1000`.
    pub deadline_ms: u64,
    /// Default memory cap of one plugin instance, in MiB. Default `64`.
    pub memory_mb: u64,
    /// How often the `tick` hook of the plugins that declare it is called, in milliseconds.
    /// Default `1000`.
    pub tick_interval_ms: u64,
    /// The user's plugins. Default: none.
    pub custom: Vec<CustomPlugin>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: PathBuf::from(DEFAULT_DIR),
            deadline_ms: 1000,
            memory_mb: 64,
            tick_interval_ms: 1000,
            custom: Vec::new(),
        }
    }
}

/// Largest memory cap, in MiB: one plugin instance must not be able to take the pod's memory.
const MAX_MEMORY_MB: u64 = 4096;

/// The default `plugins.dir`.
const DEFAULT_DIR: &str = "plugins";

impl PluginsConfig {
    /// Where the first-party component `<feature>.wasm` is: `plugins.dir` when it was set;
    /// with the default `plugins.dir`, the first that exists of `./plugins`, `plugins` beside
    /// the `miroir` binary, `../plugins` from it (a cargo target directory, where `make
    /// plugins` builds them), `../lib/miroir/plugins` from it and `/usr/lib/miroir/plugins`
    /// (an installed release). `None` when none exists.
    pub fn find_component(&self, feature: &str) -> Option<PathBuf> {
        let file = format!("{feature}.wasm");
        let mut candidates = vec![self.dir.join(&file)];
        if self.dir == Path::new(DEFAULT_DIR) {
            if let Some(exe_dir) =
                std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf))
            {
                candidates.push(exe_dir.join(DEFAULT_DIR).join(&file));
                candidates.push(exe_dir.join("..").join(DEFAULT_DIR).join(&file));
                candidates.push(exe_dir.join("../lib/miroir/plugins").join(&file));
            }
            candidates.push(Path::new("/usr/lib/miroir/plugins").join(&file));
        }
        candidates.into_iter().find(|c| c.is_file())
    }

    /// The path `<feature>.wasm` is loaded from: the one found, else the one in `plugins.dir`
    /// (named in the error when it is missing).
    pub fn component_path(&self, feature: &str) -> PathBuf {
        self.find_component(feature).unwrap_or_else(|| self.dir.join(format!("{feature}.wasm")))
    }

    /// The deadline of `plugin`'s calls, in milliseconds.
    pub fn deadline_ms_of(&self, plugin: &CustomPlugin) -> u64 {
        plugin.deadline_ms.unwrap_or(self.deadline_ms)
    }

    /// The memory cap of `plugin`'s instances, in MiB.
    pub fn memory_mb_of(&self, plugin: &CustomPlugin) -> u64 {
        plugin.memory_mb.unwrap_or(self.memory_mb)
    }

    /// Checks values; whether component files exist is checked in `crate::validate`.
    pub(crate) fn validate(&self, report: &mut Report, first_party: &[&str]) {
        check_limits(report, "plugins", Some(self.deadline_ms), Some(self.memory_mb));
        if self.tick_interval_ms == 0 {
            report.push("plugins.tick_interval_ms", "must be at least 1", "e.g. 1000 (one second)");
        }
        for (i, plugin) in self.custom.iter().enumerate() {
            let path = format!("plugins.custom[{i}]");
            let name_ok = !plugin.name.is_empty()
                && plugin.name.len() <= 64
                && plugin.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !name_ok {
                report.push(
                    format!("{path}.name"),
                    format!("`{}` is not a plugin name", plugin.name),
                    "use 1 to 64 lowercase letters, digits, `-` or `_`, e.g. top-facets",
                );
            } else if first_party.contains(&plugin.name.as_str()) {
                report.push(
                    format!("{path}.name"),
                    format!("`{}` is the name of a first-party plugin", plugin.name),
                    format!("enable it with {}.enabled: true, or rename yours", plugin.name),
                );
            } else if self.custom[..i].iter().any(|other| other.name == plugin.name) {
                report.push(
                    format!("{path}.name"),
                    format!("`{}` is used by another custom plugin", plugin.name),
                    "give every plugin its own name",
                );
            }
            if plugin.component.as_os_str().is_empty() {
                report.push(
                    format!("{path}.component"),
                    "must name the plugin's .wasm file",
                    "e.g. ./top_facets.wasm",
                );
            }
            check_limits(report, &path, plugin.deadline_ms, plugin.memory_mb);
            if !plugin.config.is_object() {
                report.push(
                    format!("{path}.config"),
                    "must be an object",
                    "write the plugin's settings as keys, e.g. { size: 5 }",
                );
            }
        }
    }
}

fn check_limits(report: &mut Report, path: &str, deadline_ms: Option<u64>, memory_mb: Option<u64>) {
    if deadline_ms == Some(0) {
        report.push(format!("{path}.deadline_ms"), "must be at least 1", "e.g. 1000 (one second)");
    }
    match memory_mb {
        Some(0) => report.push(format!("{path}.memory_mb"), "must be at least 1", "e.g. 64"),
        Some(mb) if mb > MAX_MEMORY_MB => report.push(
            format!("{path}.memory_mb"),
            format!("{mb} MiB is more than the {MAX_MEMORY_MB} MiB a plugin instance may take"),
            "plugins are meant to be small: 64 MiB is plenty for most",
        ),
        _ => {}
    }
}
