//! The `after-response` hook: each client read, with its answer, handed to the hook port on a
//! task of its own once the response is ready, so the hook never delays the client.
//!
//! Reads are `GET` requests and the read-only `POST`s (`/indexes/{uid}/search`, `facet-search`,
//! `similar`, `documents/fetch`, `/multi-search`); `/health` and the `/_miroir/` routes (admin
//! and plugin routes) are not delivered. The same layer hands sampled reads to the shadow tee
//! ([`crate::shadow`]) when `shadow.enabled`. With neither, this layer only checks two flags and
//! passes the request on.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use miroir_types::ReadExchange;

use crate::AppState;

/// Most off-path hook deliveries (`after-response`, `on-write`) waiting or running at once; past
/// it a delivery is dropped (and counted), so a slow hook cannot pile up tasks under load.
const MAX_PENDING: usize = 4096;

static PENDING: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Off-path hook deliveries dropped because [`MAX_PENDING`] were pending, since start.
pub fn dropped_deliveries() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Runs `delivery` on a task of its own, unless too many are pending already.
pub(crate) fn spawn_delivery(
    hook: &'static str,
    delivery: impl Future<Output = ()> + Send + 'static,
) {
    if PENDING.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING {
        PENDING.fetch_sub(1, Ordering::Relaxed);
        let dropped = DROPPED.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(hook, dropped, "too many hook deliveries pending; this one is dropped");
        return;
    }
    struct Pending;
    impl Drop for Pending {
        fn drop(&mut self) {
            PENDING.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let pending = Pending;
    // In the span of the request (or write) it is about, so the plugin's call shows in its trace.
    let delivery = async move {
        let _pending = pending;
        delivery.await;
    };
    tokio::spawn(tracing::Instrument::in_current_span(delivery));
}

/// Whether `method path` is a client read the hook sees.
fn is_read(method: &Method, path: &str) -> bool {
    if path == "/health" || path.starts_with("/_miroir/") {
        return false;
    }
    match *method {
        Method::GET => true,
        Method::POST => {
            path == "/multi-search"
                || (path.starts_with("/indexes/")
                    && ["/search", "/facet-search", "/similar", "/documents/fetch"]
                        .iter()
                        .any(|end| path.ends_with(end)))
        }
        _ => false,
    }
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION)
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The layer: serves the request, then (for reads, when the hook exists or the shadow tee
/// samples it) delivers it.
pub async fn deliver(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let hook = state.hooks().hooks().after_response;
    if (!hook && state.shadow().is_none()) || !is_read(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let port = if hook { state.hooks_arc() } else { None };
    let shadow = state
        .shadow()
        .filter(|tee| tee.sample(request.method().as_str(), request.uri().path()))
        .cloned();
    if port.is_none() && shadow.is_none() {
        return next.run(request).await;
    }
    let started = Instant::now();
    let started_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let (parts, body) = request.into_parts();
    let max = state.config().server.max_body_bytes;
    let body = match to_bytes(body, usize::try_from(max).unwrap_or(usize::MAX)).await {
        Ok(bytes) => bytes,
        // Too large (or cut): answered as the route's own body reader answers it.
        Err(_) => return crate::body::payload_too_large(max).into_response(),
    };
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let headers = header_list(&parts.headers);
    let response = next.run(Request::from_parts(parts, Body::from(body.clone()))).await;
    let (response_parts, response_body) = response.into_parts();
    let Ok(response_bytes) = to_bytes(response_body, usize::MAX).await else {
        return Response::from_parts(response_parts, Body::empty());
    };
    let exchange = ReadExchange {
        method,
        path,
        query,
        headers,
        body: body.to_vec(),
        status: response_parts.status.as_u16(),
        response_headers: header_list(&response_parts.headers),
        response_body: response_bytes.to_vec(),
        started_at_ms,
        total: started.elapsed(),
    };
    match (port, shadow) {
        (Some(port), Some(shadow)) => {
            shadow.submit(state.clone(), exchange.clone());
            spawn_delivery("after-response", async move { port.after_response(exchange).await });
        }
        (Some(port), None) => {
            spawn_delivery("after-response", async move { port.after_response(exchange).await });
        }
        (None, Some(shadow)) => shadow.submit(state.clone(), exchange),
        (None, None) => {}
    }
    Response::from_parts(response_parts, Body::from(response_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_gets_and_read_only_posts() {
        assert!(is_read(&Method::GET, "/indexes/movies/search"));
        assert!(is_read(&Method::POST, "/indexes/movies/search"));
        assert!(is_read(&Method::POST, "/indexes/movies/documents/fetch"));
        assert!(is_read(&Method::POST, "/multi-search"));
        assert!(!is_read(&Method::POST, "/indexes/movies/documents"));
        assert!(!is_read(&Method::DELETE, "/indexes/movies"));
        assert!(!is_read(&Method::GET, "/health"));
        assert!(!is_read(&Method::GET, "/_miroir/x/test/events"));
    }
}
