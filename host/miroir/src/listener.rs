//! The client-facing HTTP/1 listener: accepts connections, serves each with hyper, closes
//! connections that stay idle or send their headers too slowly, and drains on shutdown.
//!
//! `server.idle_timeout` is hyper's header-read timeout, which runs both while a connection waits
//! for its next request and while a request's headers arrive; the body deadline
//! (`server.request_timeout`) and the request slots are the HTTP stack's
//! ([`miroir_http::admission`]).

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How connections are served.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Longest wait for a request's headers, counted from when the connection became idle.
    pub idle_timeout: Duration,
    /// Counts the connections open (`miroir_client_connections_open`).
    pub open_connections: prometheus::IntGauge,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for the
/// requests in flight to finish (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(settings.idle_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %peer, "cannot set TCP_NODELAY");
        }
        // The peer's address, for what counts clients (the search page's rate limit).
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let open = settings.open_connections.clone();
        open.inc();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection closed with an error");
            }
            open.dec();
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
