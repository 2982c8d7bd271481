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

/// The transport of the OTLP trace export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies, to `<endpoint>/v1/traces` (collectors listen on 4318).
    #[serde(alias = "http/protobuf")]
    Http,
    /// OTLP/gRPC (collectors listen on 4317).
    Grpc,
}

impl OtlpProtocol {
    /// The standard variables naming the protocol when `telemetry.otlp_protocol` is not set, the
    /// traces' own first.
    pub const ENV: [&'static str; 2] =
        ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"];

    /// The protocol an OTLP variable names: `grpc` or `http/protobuf`.
    fn from_env_value(value: &str) -> Option<Self> {
        match value.trim() {
            "grpc" => Some(OtlpProtocol::Grpc),
            "http/protobuf" => Some(OtlpProtocol::Http),
            _ => None,
        }
    }
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
    /// OTLP collector endpoint for traces, e.g. `http://otel-collector:4318` (OTLP/HTTP: spans
    /// are posted to `<endpoint>/v1/traces` unless the URL names a path) or
    /// `http://otel-collector:4317` (OTLP/gRPC). Default: no export.
    pub otlp_endpoint: Option<String>,
    /// `http` (OTLP/HTTP with protobuf; `http/protobuf` is accepted too) or `grpc`. Unset: the
    /// standard `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// `http`.
    pub otlp_protocol: Option<OtlpProtocol>,
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
            otlp_protocol: None,
            sampling_ratio: 1.0,
            service_name: "miroir".to_owned(),
        }
    }
}

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

impl TelemetryConfig {
    /// The protocol traces are exported with: `telemetry.otlp_protocol`, else the first of
    /// [`OtlpProtocol::ENV`] set in the process environment, else `http`. Fails on a variable
    /// naming a protocol Miroir does not export (`http/json`).
    pub fn effective_otlp_protocol(&self) -> Result<OtlpProtocol, String> {
        self.effective_otlp_protocol_with(|name| std::env::var(name).ok())
    }

    /// [`Self::effective_otlp_protocol`], reading the variables with `var`.
    pub fn effective_otlp_protocol_with(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<OtlpProtocol, String> {
        if let Some(protocol) = self.otlp_protocol {
            return Ok(protocol);
        }
        for name in OtlpProtocol::ENV {
            match var(name) {
                Some(value) if !value.trim().is_empty() => {
                    return OtlpProtocol::from_env_value(&value).ok_or_else(|| {
                        format!("{name}=`{value}` is not a protocol Miroir exports traces with")
                    });
                }
                _ => {}
            }
        }
        Ok(OtlpProtocol::Http)
    }

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
            match self.effective_otlp_protocol() {
                Err(problem) => report.push(
                    "telemetry.otlp_protocol",
                    problem,
                    "use grpc or http/protobuf, or set telemetry.otlp_protocol (http or grpc)",
                ),
                // gRPC calls go to the service's own path: one in the endpoint would be ignored.
                Ok(OtlpProtocol::Grpc) if url_has_path(endpoint) => report.push(
                    "telemetry.otlp_endpoint",
                    format!("`{endpoint}` names a path, which OTLP/gRPC does not use"),
                    "give the collector's gRPC address only, e.g. http://otel-collector:4317",
                ),
                Ok(_) => {}
            }
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

/// Whether `value` is a URL with a path other than `/`.
fn url_has_path(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|url| !matches!(url.path(), "" | "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_protocol_is_the_key_then_the_standard_variables_then_http() {
        let mut telemetry = TelemetryConfig::default();
        assert_eq!(telemetry.effective_otlp_protocol_with(env(&[])), Ok(OtlpProtocol::Http));
        let grpc = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")];
        assert_eq!(telemetry.effective_otlp_protocol_with(env(&grpc)), Ok(OtlpProtocol::Grpc));
        let both = [
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ];
        assert_eq!(telemetry.effective_otlp_protocol_with(env(&both)), Ok(OtlpProtocol::Http));
        let json = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")];
        assert!(telemetry.effective_otlp_protocol_with(env(&json)).is_err());
        telemetry.otlp_protocol = Some(OtlpProtocol::Http);
        assert_eq!(telemetry.effective_otlp_protocol_with(env(&grpc)), Ok(OtlpProtocol::Http));
        assert_eq!(telemetry.effective_otlp_protocol_with(env(&json)), Ok(OtlpProtocol::Http));
    }
}
