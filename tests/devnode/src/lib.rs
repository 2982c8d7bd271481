//! A Meilisearch-compatible development node, held in memory.
//!
//! It exists so that Miroir's tests have Meilisearch nodes to talk to on machines where no
//! Meilisearch binary can be installed. It answers Meilisearch 1.50's HTTP API with the same
//! shapes, codes and defaults, checked against recordings of a real Meilisearch. Miroir itself
//! never depends on it: production runs real Meilisearch.
//!
//! It owns nothing durable: state lives in memory and is lost when the process stops.

pub mod documents;
pub mod edit;
pub mod error;
pub mod filter;
pub mod index;
pub mod keys;
mod process;
pub mod routes;
pub mod search;
pub mod settings;
pub mod state;
pub mod tasks;
pub mod tenant;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use state::Node;

/// Serve the API on `listener` until `shutdown` resolves; the task worker runs alongside.
pub async fn serve(
    listener: TcpListener,
    master_key: Option<String>,
    processing_delay: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_node(listener, Node::new(master_key, processing_delay), shutdown).await
}

/// Serve `node` on `listener` until `shutdown` resolves; the task worker runs alongside.
pub async fn serve_node(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let worker = tokio::spawn(Arc::clone(&node).run_worker());
    let result = axum::serve(listener, routes::router(node)).with_graceful_shutdown(shutdown).await;
    worker.abort();
    result
}
