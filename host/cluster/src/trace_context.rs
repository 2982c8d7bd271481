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

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use reqwest::header::{HeaderMap, HeaderValue};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Runs `check` with an OpenTelemetry layer (no exporter) and the W3C propagator installed.
    fn with_otel(check: impl FnOnce()) {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), check);
    }

    #[test]
    fn a_node_request_carries_the_clients_trace_with_its_own_span_as_parent() {
        with_otel(|| {
            let mut headers = HeaderMap::new();
            let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            headers.insert("traceparent", HeaderValue::from_static(traceparent));
            headers.insert("tracestate", HeaderValue::from_static("client=abc"));
            let request = tracing::info_span!("request");
            adopt_remote_parent(&request, &headers);
            assert_eq!(trace_id(&request).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
            let node_call = request.in_scope(|| tracing::info_span!("node_call"));
            let sent: std::collections::BTreeMap<String, String> =
                headers_for(&node_call).into_iter().collect();
            let own = node_call.context().span().span_context().span_id().to_string();
            assert_eq!(
                sent["traceparent"],
                format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{own}-01")
            );
            assert_eq!(sent["tracestate"], "client=abc");
        });
    }

    #[test]
    fn a_request_without_traceparent_starts_a_trace_and_garbage_is_ignored() {
        with_otel(|| {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_static("not-a-traceparent"));
            let request = tracing::info_span!("request");
            adopt_remote_parent(&request, &headers);
            let id = trace_id(&request).expect("a new trace");
            assert_eq!(id.len(), 32);
            assert_ne!(id, "0".repeat(32));
        });
    }

    #[test]
    fn without_opentelemetry_nothing_is_sent() {
        let request = tracing::info_span!("request");
        assert_eq!(trace_id(&request), None);
        assert!(headers_for(&request).is_empty());
    }
}
