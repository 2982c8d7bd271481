//! Logging setup: human or JSON lines on stderr, filtered by `RUST_LOG` or `telemetry.log_level`.

use anyhow::Context as _;
use miroir_config::{LogFormat, TelemetryConfig};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set and non-empty, overrides
/// `telemetry.log_level`.
pub fn init(telemetry: &TelemetryConfig) -> anyhow::Result<()> {
    let directives = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => telemetry.log_level.clone(),
    };
    let filter = EnvFilter::try_new(&directives)
        .with_context(|| format!("invalid log filter `{directives}`"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match telemetry.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!(error)).context("a logger is already installed")?;
    if let Some(endpoint) = &telemetry.otlp_endpoint {
        tracing::warn!(%endpoint, "OTLP trace export is not built in yet; traces stay local");
    }
    Ok(())
}
