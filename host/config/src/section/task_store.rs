//! `task_store`: where tasks, leases and other shared state live.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::validate::check_url;
use crate::HumanDuration;

/// Which task store backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStoreBackend {
    /// An embedded SQLite file: one Miroir instance only.
    Sqlite,
    /// A Redis server: required when several Miroir instances share the store.
    Redis,
}

impl TaskStoreBackend {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStoreBackend::Sqlite => "sqlite",
            TaskStoreBackend::Redis => "redis",
        }
    }
}

/// The `task_store` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskStoreConfig {
    /// `sqlite` (default) or `redis`.
    pub backend: TaskStoreBackend,
    /// SQLite database file, created on first start. Default `miroir.db`.
    pub path: PathBuf,
    /// Redis URL (`redis://`, `rediss://` or `unix://`); required with `backend: redis`.
    pub url: Option<String>,
    /// How long finished tasks are kept before pruning. Default `"7d"`.
    pub task_retention: HumanDuration,
    /// How often the leader looks for finished tasks past their retention. Default `"30s"`.
    pub prune_interval: HumanDuration,
    /// How many tasks one pruning batch deletes at most; a run deletes batch after batch until
    /// nothing old is left. Default `1000`.
    pub prune_batch_size: usize,
    /// How long to wait between two batches of one run, to keep pruning gentle on the store.
    /// Default `"0s"`.
    pub prune_batch_pause: HumanDuration,
    /// Put before every Redis key, so several clusters can share one Redis. Default `miroir:`.
    /// With Redis Cluster use a hash tag such as `{miroir}:`.
    pub key_prefix: String,
}

impl Default for TaskStoreConfig {
    fn default() -> Self {
        TaskStoreConfig {
            backend: TaskStoreBackend::Sqlite,
            path: PathBuf::from("miroir.db"),
            url: None,
            task_retention: HumanDuration::from_secs(7 * 24 * 3600),
            prune_interval: HumanDuration::from_secs(30),
            prune_batch_size: 1000,
            prune_batch_pause: HumanDuration::from_secs(0),
            key_prefix: "miroir:".to_owned(),
        }
    }
}

impl TaskStoreConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        match self.backend {
            TaskStoreBackend::Sqlite => {
                if self.path.as_os_str().is_empty() {
                    report.push(
                        "task_store.path",
                        "the SQLite backend needs a database file",
                        "set task_store.path, e.g. /var/lib/miroir/miroir.db",
                    );
                }
            }
            TaskStoreBackend::Redis => match &self.url {
                None => report.push(
                    "task_store.url",
                    "the redis backend needs a URL",
                    "set task_store.url, e.g. redis://redis:6379/0",
                ),
                Some(url) => check_url(report, "task_store.url", url, &["redis", "rediss", "unix"]),
            },
        }
        if self.key_prefix.is_empty() {
            report.push(
                "task_store.key_prefix",
                "must not be empty",
                "keep the default `miroir:` or name the cluster, e.g. `miroir-prod:`",
            );
        }
        if self.task_retention.is_zero() {
            report.push(
                "task_store.task_retention",
                "must be longer than 0s",
                "keep finished tasks for a while, e.g. \"7d\"",
            );
        }
        if self.prune_interval.is_zero() {
            report.push(
                "task_store.prune_interval",
                "must be longer than 0s",
                "look for old tasks now and then, e.g. \"30s\"",
            );
        }
        if self.prune_batch_size == 0 {
            report.push(
                "task_store.prune_batch_size",
                "must be at least 1",
                "delete old tasks in batches of, e.g., 1000",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_paths(config: &TaskStoreConfig) -> Vec<String> {
        let mut report = Report::default();
        config.validate(&mut report);
        report.into_problems().into_iter().map(|p| p.path).collect()
    }

    #[test]
    fn pruning_defaults_are_valid() {
        let config = TaskStoreConfig::default();
        assert_eq!(config.prune_batch_size, 1000);
        assert_eq!(config.prune_interval, HumanDuration::from_secs(30));
        assert!(config.prune_batch_pause.is_zero());
        assert!(problem_paths(&config).is_empty());
    }

    #[test]
    fn empty_batches_and_a_zero_interval_are_refused() {
        let config = TaskStoreConfig {
            prune_batch_size: 0,
            prune_interval: HumanDuration::from_secs(0),
            ..TaskStoreConfig::default()
        };
        assert_eq!(
            problem_paths(&config),
            ["task_store.prune_interval", "task_store.prune_batch_size"]
        );
    }
}
