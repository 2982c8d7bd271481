//! Checks that span sections: the topology, the store against the number of replicas, and
//! whether enabled plugins have their component files.

use std::collections::HashMap;

use crate::error::{Problem, Report};
use crate::{Config, ConfigError, TaskStoreBackend, BUILT_IN_FEATURES, FIRST_PARTY_PLUGINS};

/// Most shards an index may have. A shard number is a filter value on every node; far more shards
/// than nodes buys nothing.
const MAX_SHARDS: u32 = 65_536;

impl Config {
    /// Checks every value and every rule between values, and returns every problem found.
    ///
    /// Plugin component files are looked up on disk for enabled plugins only.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Every problem with the configuration, in key order of sections.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut report = Report::default();
        self.server.validate(&mut report);
        self.validate_topology(&mut report);
        self.validate_instances(&mut report);
        self.task_store.validate(&mut report);
        self.health.validate(&mut report);
        self.scatter.validate(&mut report);
        self.rebalancer.validate(&mut report);
        self.leader.validate(&mut report);
        self.idempotency.validate(&mut report);
        self.session_pinning.validate(&mut report);
        self.telemetry.validate(&mut report);
        self.metrics.validate(&mut report, self.server.port);
        self.multi_search.validate(&mut report);
        self.vector_search.validate(&mut report);
        self.shadow.validate(&mut report);
        self.cdc.validate(&mut report);
        self.ilm.validate(&mut report);
        self.search_ui.validate(
            &mut report,
            self.replicas,
            self.task_store.url.as_deref(),
            self.secrets.master_key.as_ref().map(|k| k.expose()),
        );
        let reserved: Vec<&str> =
            FIRST_PARTY_PLUGINS.iter().chain(BUILT_IN_FEATURES).copied().collect();
        self.plugins.validate(&mut report, &reserved);
        self.validate_plugin_files(&mut report);
        report.into_problems()
    }

    fn validate_topology(&self, report: &mut Report) {
        if self.nodes.is_empty() {
            report.push(
                "nodes",
                "no Meilisearch node is configured",
                "add at least one: nodes: [{ id: meili-0, address: \"http://meili-0:7700\", \
                 replica_group: a }]",
            );
        }
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<&str, usize> = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(first) = ids.insert(node.id.as_str(), i) {
                ids.insert(node.id.as_str(), first);
                report.push(
                    format!("nodes[{i}].id"),
                    format!("`{}` is also the id of nodes[{first}]", node.id),
                    "node ids must be unique and are never reused: pick a new one",
                );
            }
            let before = report.len();
            check_url(report, &format!("nodes[{i}].address"), &node.address, &["http", "https"]);
            let address = node.address.trim_end_matches('/');
            if report.len() == before {
                if let Some(first) = addresses.insert(address, i) {
                    addresses.insert(address, first);
                    report.push(
                        format!("nodes[{i}].address"),
                        format!("`{}` is also the address of nodes[{first}]", node.address),
                        "list each Meilisearch node once",
                    );
                }
            }
            if node.replica_group.is_none() {
                report.push(
                    format!("nodes[{i}].replica_group"),
                    format!("node `{}` is in no replica group", node.id),
                    "set replica_group (e.g. a); the nodes of one group together hold every shard",
                );
            }
        }

        if self.shards == 0 || self.shards > MAX_SHARDS {
            report.push(
                "shards",
                format!("{} is not between 1 and {MAX_SHARDS}", self.shards),
                "64 (the default) suits most fleets",
            );
        }
        if self.replication_factor == 0 {
            report.push(
                "replication_factor",
                "must be at least 1",
                "1 keeps each shard once per group; 2 survives losing a node per group",
            );
        } else if let Some((group, nodes)) =
            self.replica_groups().into_iter().min_by_key(|(_, nodes)| nodes.len())
        {
            if (self.replication_factor as usize) > nodes.len() {
                report.push(
                    "replication_factor",
                    format!(
                        "{} is larger than replica group `{group}`, which has {} node{}",
                        self.replication_factor,
                        nodes.len(),
                        if nodes.len() == 1 { "" } else { "s" },
                    ),
                    format!(
                        "lower replication_factor to at most {} or add nodes to group `{group}`",
                        nodes.len()
                    ),
                );
            }
        }
    }

    fn validate_instances(&self, report: &mut Report) {
        if self.replicas == 0 {
            report.push("replicas", "must be at least 1", "the number of Miroir instances, e.g. 1");
        } else if self.replicas > 1 && self.task_store.backend == TaskStoreBackend::Sqlite {
            report.push(
                "task_store.backend",
                format!(
                    "sqlite cannot be shared by {} Miroir instances (replicas: {}): two or more \
                     replicas require Redis",
                    self.replicas, self.replicas
                ),
                "set task_store.backend: redis and task_store.url, or replicas: 1",
            );
        }
        if let Some(id) = &self.instance_id {
            let valid = !id.is_empty()
                && id.len() <= 128
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                report.push(
                    "instance_id",
                    format!("`{id}` is not an instance id"),
                    "use 1 to 128 ASCII letters, digits, `-`, `_` or `.`, e.g. the pod name",
                );
            }
        }
    }

    fn validate_plugin_files(&self, report: &mut Report) {
        for name in self.enabled_features() {
            let component = self.plugins.component_path(name);
            if !component.is_file() {
                report.push(
                    format!("{name}.enabled"),
                    format!("the plugin is enabled but its component `{}` does not exist", component.display()),
                    format!(
                        "build the first-party plugins into plugins.dir ({}), or set {name}.enabled: false",
                        self.plugins.dir.display()
                    ),
                );
            }
        }
        for (i, plugin) in self.plugins.custom.iter().enumerate() {
            if plugin.enabled
                && !plugin.component.as_os_str().is_empty()
                && !plugin.component.is_file()
            {
                report.push(
                    format!("plugins.custom[{i}].component"),
                    format!(
                        "plugin `{}` is enabled but `{}` does not exist",
                        plugin.name,
                        plugin.component.display()
                    ),
                    "build the plugin to that path (relative paths are relative to the config file), \
                     or set enabled: false",
                );
            }
        }
    }
}

/// Checks that `value` is an absolute URL with one of `schemes` and, except for `unix`, a host.
pub(crate) fn check_url(report: &mut Report, path: &str, value: &str, schemes: &[&str]) {
    let example = format!("{}://host:port", schemes[0]);
    match url::Url::parse(value) {
        Err(error) => report.push(
            path,
            format!("`{value}` is not a URL: {error}"),
            format!("write a full URL such as {example}"),
        ),
        Ok(url) if !schemes.contains(&url.scheme()) => {
            let allowed =
                schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(" or ");
            report.push(
                path,
                format!("`{value}` is not a URL starting with {allowed}"),
                format!("write a full URL such as {example}"),
            )
        }
        Ok(url) if url.scheme() != "unix" && url.host_str().is_none_or(str::is_empty) => report
            .push(
                path,
                format!("`{value}` has no host"),
                format!("write a full URL such as {example}"),
            ),
        Ok(_) => {}
    }
}
