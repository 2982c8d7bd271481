//! OpenTelemetry trace export over OTLP, when `telemetry.otlp_endpoint` is set: OTLP/HTTP
//! (protobuf) or OTLP/gRPC, as `telemetry.otlp_protocol` (or `OTEL_EXPORTER_OTLP_PROTOCOL`) says.
//!
//! Spans go through a batch processor whose exporter runs on its own thread, so a request never
//! waits for the collector. The HTTP exporter's client is blocking; the gRPC one (tonic) needs a
//! tokio runtime, so it gets a one-worker runtime owned by the export, and every export runs on
//! it: it outlives the gateway's runtime, which is gone by the time the last spans are flushed.
//! The queue is bounded: when the collector is slow or gone, spans past the bound, and every
//! span of a batch the collector did not take, are dropped and counted in
//! `miroir_trace_spans_dropped_total`. Sampling is parent-based: a client's sampled
//! `traceparent` is followed, a root trace is kept with probability `telemetry.sampling_ratio`.
//!
//! The batch delay, batch size and export timeout follow the standard `OTEL_BSP_*` and
//! `OTEL_EXPORTER_OTLP_TIMEOUT` environment variables.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context as _;
use miroir_config::{OtlpProtocol, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use prometheus::IntCounter;

/// Spans finished but never delivered to the collector.
pub static SPANS_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new(
        "miroir_trace_spans_dropped_total",
        "Trace spans dropped because the export queue was full or the collector did not take them.",
    )
    .expect("valid counter")
});

/// Spans the export queue holds at most; past that, new spans are dropped (and counted).
const MAX_QUEUED_SPANS: usize = 4096;

/// The running export: flushed and stopped by [`TraceExport::shutdown`].
pub struct TraceExport {
    provider: SdkTracerProvider,
    /// The gRPC exporter's runtime; stopped after the provider has flushed.
    runtime: Option<tokio::runtime::Runtime>,
}

impl TraceExport {
    /// Starts the export to `telemetry.otlp_endpoint` with `protocol` and installs the W3C trace
    /// context propagator. Returns the tracer spans are made with.
    pub fn start(
        telemetry: &TelemetryConfig,
        endpoint: &str,
        protocol: OtlpProtocol,
    ) -> anyhow::Result<(Self, SdkTracer)> {
        let url = export_url(endpoint, protocol);
        let (exporter, runtime) = match protocol {
            OtlpProtocol::Http => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    // Ours to decide (the standard variable was read with the configuration).
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(url.clone())
                    .build();
                (exporter, None)
            }
            OtlpProtocol::Grpc => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-grpc")
                    .enable_all()
                    .build()
                    .context("cannot start the runtime of the OTLP/gRPC export")?;
                // The channel's worker task is spawned on the runtime entered.
                let exporter = {
                    let _entered = runtime.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                        .with_endpoint(url.clone())
                        .build()
                };
                (exporter, Some(runtime))
            }
        };
        let exporter = exporter.with_context(|| format!("cannot set up OTLP export to `{url}`"))?;
        let queue = Arc::new(Queue::default());
        let batch = BatchSpanProcessor::builder(CountingExporter {
            inner: Arc::new(exporter),
            runtime: runtime.as_ref().map(|r| r.handle().clone()),
            queue: Arc::clone(&queue),
            failing: AtomicBool::new(false),
        })
        // Above our own bound, so the processor's queue never overflows uncounted.
        .with_batch_config(
            BatchConfigBuilder::default().with_max_queue_size(MAX_QUEUED_SPANS * 2).build(),
        )
        .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BoundedProcessor { inner: batch, queue })
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                telemetry.sampling_ratio,
            ))))
            .with_resource(
                Resource::builder().with_service_name(telemetry.service_name.clone()).build(),
            )
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let tracer = provider.tracer("miroir");
        Ok((TraceExport { provider, runtime }, tracer))
    }

    /// Exports what is queued (waiting at most a few seconds for the collector) and stops.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(%error, "trace export did not flush before stopping");
        }
        if let Some(runtime) = self.runtime {
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// Where spans are sent: the OTLP/HTTP traces URL, or the gRPC endpoint as given.
pub fn export_url(endpoint: &str, protocol: OtlpProtocol) -> String {
    match protocol {
        OtlpProtocol::Http => traces_url(endpoint),
        OtlpProtocol::Grpc => endpoint.trim_end_matches('/').to_owned(),
    }
}

/// The OTLP/HTTP traces URL: the endpoint as given when it names a path, else its
/// `/v1/traces`.
pub fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// Spans handed to the batch processor and not yet exported or dropped.
#[derive(Debug, Default)]
struct Queue {
    pending: AtomicUsize,
}

impl Queue {
    fn take(&self) -> bool {
        self.pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_QUEUED_SPANS).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self, spans: usize) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(spans)));
    }
}

/// The batch processor behind a counted bound: a span that finds the queue full is dropped here,
/// at once, instead of waiting.
#[derive(Debug)]
struct BoundedProcessor {
    inner: BatchSpanProcessor,
    queue: Arc<Queue>,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.queue.take() {
            self.inner.on_end(span);
        } else {
            SPANS_DROPPED.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, releasing queue room for every batch and counting the spans of a batch
/// the collector did not take.
#[derive(Debug)]
struct CountingExporter {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    /// The runtime exports run on (gRPC); without one they run on the batch processor's thread.
    runtime: Option<tokio::runtime::Handle>,
    queue: Arc<Queue>,
    /// Whether the last export failed.
    failing: AtomicBool,
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = match &self.runtime {
            Some(runtime) => {
                let inner = Arc::clone(&self.inner);
                runtime
                    .spawn(async move { inner.export(batch).await })
                    .await
                    .unwrap_or_else(|error| Err(OTelSdkError::InternalFailure(error.to_string())))
            }
            None => self.inner.export(batch).await,
        };
        self.queue.release(spans);
        // Logged when export starts failing and when it recovers, not once per batch.
        match &result {
            Err(error) => {
                SPANS_DROPPED.inc_by(spans as u64);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "trace export failed; spans are dropped until the \
                        collector takes them again (miroir_trace_spans_dropped_total)");
                }
            }
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("trace export works again");
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Set when the provider is built, before any export shares the exporter.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_endpoint_gets_the_traces_path() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("http://collector:4318/"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://c/otlp/v1/traces"), "https://c/otlp/v1/traces");
        assert_eq!(
            export_url("http://collector:4317/", OtlpProtocol::Grpc),
            "http://collector:4317"
        );
    }

    #[test]
    fn the_queue_refuses_past_its_bound_and_frees_room_on_export() {
        let queue = Queue::default();
        for _ in 0..MAX_QUEUED_SPANS {
            assert!(queue.take());
        }
        assert!(!queue.take());
        queue.release(10);
        assert!(queue.take());
    }
}
