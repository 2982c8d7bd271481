//! Logging and tracing setup: human or JSON lines on stderr, filtered by `RUST_LOG` or
//! `telemetry.log_level`, and the gateway's spans exported over OTLP when
//! `telemetry.otlp_endpoint` is set (see [`crate::trace_export`]).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use miroir_config::{LogFormat, OtlpProtocol, TelemetryConfig};
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::trace_export::TraceExport;

/// How long an info line may wait in the log buffer before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pending bytes that are written at once.
const FLUSH_AT: usize = 16 * 1024;

/// The process's log writer, for [`flush`].
static WRITER: OnceLock<BatchedStderr> = OnceLock::new();

/// Standard error, written in batches: every request logs a line, and one `write` per line was a
/// visible share of a search's CPU. Lines wait at most [`FLUSH_EVERY`] (a thread writes them)
/// or until [`FLUSH_AT`] bytes are pending; a warning or an error is written at once, with the
/// lines before it.
#[derive(Clone, Default)]
struct BatchedStderr {
    pending: Arc<Mutex<Vec<u8>>>,
}

impl BatchedStderr {
    fn start() -> Self {
        let writer = BatchedStderr::default();
        let flusher = writer.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush();
            })
            .expect("a thread to write the log");
        writer
    }

    fn flush(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pending.is_empty() {
            // Nothing better to do with a failed write to stderr than to drop the lines.
            let _ = std::io::stderr().write_all(&pending);
            pending.clear();
        }
    }
}

/// One log line being written (see [`BatchedStderr`]).
struct Line<'a> {
    writer: &'a BatchedStderr,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut pending =
            self.writer.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.extend_from_slice(buf);
        if self.urgent || pending.len() >= FLUSH_AT {
            let written = std::io::stderr().write_all(&pending);
            pending.clear();
            written?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { writer: self, urgent: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line { writer: self, urgent: *meta.level() <= Level::WARN }
    }
}

/// Writes the log lines still waiting (before the process exits).
pub fn flush() {
    if let Some(writer) = WRITER.get() {
        writer.flush();
    }
}

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
    let writer = WRITER.get_or_init(BatchedStderr::start).clone();
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    let fmt = match telemetry.log_format {
        LogFormat::Human => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).boxed(),
    };
    // The protocol was checked when the configuration was loaded.
    let target = match &telemetry.otlp_endpoint {
        Some(endpoint) => Some((
            endpoint,
            telemetry.effective_otlp_protocol().map_err(|problem| anyhow::anyhow!(problem))?,
        )),
        None => None,
    };
    let (export, otel) = match target {
        Some((endpoint, protocol)) => {
            let (export, tracer) = TraceExport::start(telemetry, endpoint, protocol)?;
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
    if let Some((endpoint, protocol)) = target {
        let url = crate::trace_export::export_url(endpoint, protocol);
        let sampling_ratio = telemetry.sampling_ratio;
        match protocol {
            OtlpProtocol::Http => {
                tracing::info!(%url, sampling_ratio, "exporting traces over OTLP/HTTP");
                if url.contains(":4317/") {
                    tracing::warn!(%url, "4317 is the OTLP/gRPC port, and this export is \
                        OTLP/HTTP (protobuf), which collectors usually receive on 4318; set \
                        telemetry.otlp_protocol: grpc to export over gRPC");
                }
            }
            OtlpProtocol::Grpc => {
                tracing::info!(%url, sampling_ratio, "exporting traces over OTLP/gRPC");
                if url.ends_with(":4318") {
                    tracing::warn!(%url, "4318 is the OTLP/HTTP port, and this export is \
                        OTLP/gRPC, which collectors usually receive on 4317");
                }
            }
        }
    }
    Ok(export)
}
