//! `shadow`: the shadow tee, comparing live reads against other deployments.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::validate::check_url;

/// A deployment that receives a copy of sampled reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowTarget {
    /// Name used in diffs and metrics.
    pub name: String,
    /// Base URL of another Miroir or Meilisearch.
    pub address: String,
    /// The environment variable holding the key sent to this target as a bearer token (the
    /// client's own key is never forwarded). Default: none, requests go without a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
}

/// The `shadow` section: the shadow tee, built into the gateway (it runs after the client's
/// answer, on tasks of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Whether the plugin is loaded. Default `false`.
    pub enabled: bool,
    /// Fraction of reads copied, from 0.0 to 1.0. Default `0.05`.
    pub sample_rate: f64,
    /// Where copies go. Needs at least one when enabled.
    pub targets: Vec<ShadowTarget>,
    /// Diffs kept for `GET /_miroir/shadow/diff`. Default `1000`.
    pub diff_buffer: u32,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig { enabled: false, sample_rate: 0.05, targets: Vec::new(), diff_buffer: 1000 }
    }
}

impl ShadowConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if !self.enabled {
            return;
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            report.push(
                "shadow.sample_rate",
                format!("{} is not between 0.0 and 1.0", self.sample_rate),
                "0.05 copies one read in twenty",
            );
        }
        if self.targets.is_empty() {
            report.push(
                "shadow.targets",
                "shadowing is enabled but there is no target",
                "add `- { name: staging, address: http://staging:7700 }`, or set shadow.enabled: false",
            );
        }
        for (i, target) in self.targets.iter().enumerate() {
            if target.name.trim().is_empty() {
                report.push(
                    format!("shadow.targets[{i}].name"),
                    "must not be empty",
                    "e.g. staging",
                );
            } else if self.targets[..i].iter().any(|t| t.name == target.name) {
                report.push(
                    format!("shadow.targets[{i}].name"),
                    format!("`{}` is used by another target", target.name),
                    "give every target its own name",
                );
            }
            check_url(
                report,
                &format!("shadow.targets[{i}].address"),
                &target.address,
                &["http", "https"],
            );
        }
        if self.diff_buffer == 0 {
            report.push("shadow.diff_buffer", "must be at least 1", "e.g. 1000");
        }
    }
}
