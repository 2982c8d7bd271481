//! `metrics`: the Prometheus exposition port.

use serde::{Deserialize, Serialize};

use crate::error::Report;

/// The `metrics` section. `/metrics` is served on its own port so it can stay unauthenticated
/// inside the cluster; the same data is admin-gated at `/_miroir/metrics` on the main port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether the metrics port is opened. Default `true`.
    pub enabled: bool,
    /// Port of `/metrics`, on `server.bind`. Default `9090`.
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, port: 9090 }
    }
}

impl MetricsConfig {
    pub(crate) fn validate(&self, report: &mut Report, server_port: u16) {
        if !self.enabled {
            return;
        }
        if self.port == 0 {
            report.push("metrics.port", "must be between 1 and 65535, got 0", "e.g. 9090");
        } else if self.port == server_port {
            report.push(
                "metrics.port",
                format!("{} is also server.port", self.port),
                "give the metrics endpoint its own port, e.g. 9090",
            );
        }
    }
}
