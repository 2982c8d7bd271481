//! W3C trace context (`traceparent`, `tracestate`) across the gateway: taken from a client
//! request, given to every node request, and the per-request figures the request log reports.
//!
//! The propagator is the process-wide OpenTelemetry one the binary installs; without it (no
//! OTLP export configured) extraction and injection do nothing, and nodes get no `traceparent`.
//! This module owns no exporter and no subscriber: only what crosses the wire.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Makes `span` a child of the trace context the client sent in `headers`, when it sent one.
/// A missing or malformed `traceparent` leaves `span` a root, as W3C trace context asks.
pub fn adopt_remote_parent(span: &tracing::Span, headers: &reqwest::header::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed, where there is nothing to join.
        let _ = span.set_parent(parent);
    }
}

/// The trace id of `span` in W3C hex form, when it belongs to an OpenTelemetry trace.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// The `traceparent` (and `tracestate`) headers naming `span` as the parent, for an outgoing
/// node request.
pub(crate) fn headers_for(span: &tracing::Span) -> Vec<(String, String)> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut headers = Vec::with_capacity(2);
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(&mut headers))
    });
    headers
}

struct HeaderExtractor<'a>(&'a reqwest::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(reqwest::header::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// What one client request did on the nodes, counted by [`crate::NodeClient`] while it runs
/// inside [`crate::with_request`]: read by the request log line when the answer is sent.
#[derive(Debug, Default)]
pub struct RequestFigures {
    node_calls: AtomicUsize,
}

impl RequestFigures {
    /// Shared figures for one request.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Node requests sent so far for this request (its fan-out, replacements included).
    pub fn node_calls(&self) -> usize {
        self.node_calls.load(Ordering::Relaxed)
    }

    pub(crate) fn count_node_call(&self) {
        self.node_calls.fetch_add(1, Ordering::Relaxed);
    }
}
