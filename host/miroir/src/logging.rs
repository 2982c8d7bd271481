//! Logging and tracing setup: human or JSON lines on stderr, filtered by `RUST_LOG` or
//! `telemetry.log_level`, and the gateway's spans exported over OTLP when
//! `telemetry.otlp_endpoint` is set (see [`crate::trace_export`]).

use anyhow::Context as _;
use miroir_config::{LogFormat, TelemetryConfig};
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::trace_export::TraceExport;

/// Installs the global subscriber. `RUST_LOG`, when set and non-empty, overrides
/// `telemetry.log_level`; it filters the log lines only, not the exported spans (the gateway's
/// own, at info level and above, whatever the log level, with its warnings and errors as span
/// events). Returns the trace export to stop
/// when the gateway stops, when one is configured.
pub fn init(telemetry: &TelemetryConfig) -> anyhow::Result<Option<TraceExport>> {
    let directives = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value,
        _ => telemetry.log_level.clone(),
    };
    let filter = EnvFilter::try_new(&directives)
        .with_context(|| format!("invalid log filter `{directives}`"))?;
    // Colours only on a terminal: a log file or collector gets plain text (and writing the
    // escape codes of every field cost a visible share of a search's CPU).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let fmt = match telemetry.log_format {
        LogFormat::Human => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).boxed(),
    };
    let (export, otel) = match &telemetry.otlp_endpoint {
        Some(endpoint) => {
            let (export, tracer) = TraceExport::start(telemetry, endpoint)?;
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_threads(false)
                .with_location(false)
                .with_tracked_inactivity(false)
                .with_filter(Targets::new().with_target("miroir", LevelFilter::INFO))
                // Spans, and warnings and errors as span events; info events (the request log
                // line among them) would only repeat the spans' attributes, at a cost per request.
                .with_filter(filter_fn(|meta| meta.is_span() || *meta.level() <= Level::WARN));
            (Some(export), Some(layer))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|error| anyhow::anyhow!(error))
        .context("a logger is already installed")?;
    if let Some(endpoint) = &telemetry.otlp_endpoint {
        let url = crate::trace_export::traces_url(endpoint);
        tracing::info!(%url, sampling_ratio = telemetry.sampling_ratio, "exporting traces over OTLP/HTTP");
        if url.contains(":4317/") {
            tracing::warn!(%url, "4317 is the OTLP/gRPC port; Miroir exports OTLP/HTTP \
                (protobuf), which collectors usually receive on 4318");
        }
    }
    Ok(export)
}
