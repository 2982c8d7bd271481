//! `telemetry`: logs and trace export.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::validate::check_url;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// For people at a terminal (default).
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The `telemetry` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `human` (default) or `json`.
    pub log_format: LogFormat,
    /// Log filter: a level (`info`) or `target=level` directives separated by commas.
    /// `RUST_LOG`, when set, takes precedence. Default `info`.
    pub log_level: String,
    /// OTLP/HTTP (protobuf) collector endpoint for traces, e.g. `http://otel-collector:4318`;
    /// spans are posted to `<endpoint>/v1/traces` unless the URL names a path. Default: no export.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces exported, from 0.0 to 1.0; a request carrying a W3C
    /// `traceparent` follows the client's sampled flag instead. Default `1.0`.
    pub sampling_ratio: f64,
    /// Service name reported with traces. Default `miroir`.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
            sampling_ratio: 1.0,
            service_name: "miroir".to_owned(),
        }
    }
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

impl TelemetryConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        let bad: Vec<&str> = self
            .log_level
            .split(',')
            .map(str::trim)
            .filter(|directive| {
                let level = directive.rsplit_once('=').map_or(*directive, |(_, level)| level);
                !LEVELS.contains(&level.to_ascii_lowercase().as_str())
            })
            .collect();
        if self.log_level.trim().is_empty() || !bad.is_empty() {
            report.push(
                "telemetry.log_level",
                format!("`{}` is not a log filter", self.log_level),
                "use a level (trace, debug, info, warn, error, off) or `target=level` directives, \
                 e.g. \"info,miroir=debug\"",
            );
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            // The exporter is built without TLS (as the node clients are): an https collector
            // would fail every export, so it is refused here, where the operator sees it.
            check_url(report, "telemetry.otlp_endpoint", endpoint, &["http"]);
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            report.push(
                "telemetry.sampling_ratio",
                format!("{} is not between 0.0 and 1.0", self.sampling_ratio),
                "1.0 exports every trace, 0.1 one in ten",
            );
        }
        if self.service_name.trim().is_empty() {
            report.push("telemetry.service_name", "must not be empty", "e.g. miroir");
        }
    }
}
