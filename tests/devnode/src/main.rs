//! `miroir-devnode`: a Meilisearch-compatible in-memory node for tests and local demos.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// jemalloc, as Miroir: glibc's malloc grew and trimmed its heaps page by page as an index grew.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A Meilisearch-compatible development node (in memory). Not for production.
#[derive(Debug, Parser)]
#[command(name = "miroir-devnode", version)]
struct Cli {
    /// Address to listen on, like meilisearch's own flag.
    #[arg(long, env = "MEILI_HTTP_ADDR", default_value = "127.0.0.1:7700")]
    http_addr: String,
    /// Master key; without one every route is open, as with Meilisearch.
    #[arg(long, env = "MEILI_MASTER_KEY")]
    master_key: Option<String>,
    /// Time every task spends in `processing`, to make task states observable in tests.
    #[arg(long, default_value_t = 0)]
    processing_delay_ms: u64,
    /// Time every search, facet search, similar and multi-search waits before answering, to
    /// make the node slow in tests.
    #[arg(long, default_value_t = 0)]
    search_delay_ms: u64,
    /// Time every request, `/health` included, waits before answering: a busy node, slow but
    /// alive.
    #[arg(long, default_value_t = 0)]
    response_delay_ms: u64,
    /// Answer a search the node already answered from memory, byte for byte, until the next
    /// task is applied: for benchmarks of a gateway in front, so the node's own scan does not
    /// drown the gateway's cost.
    #[arg(long)]
    replay_searches: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(&cli.http_addr)
        .await
        .with_context(|| format!("binding {}", cli.http_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "miroir-devnode listening");
    // Tests read this line to learn the port when they bind port 0.
    println!("listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let node = miroir_devnode::Node::new(
        cli.master_key.filter(|k| !k.is_empty()),
        Duration::from_millis(cli.processing_delay_ms),
    );
    node.set_search_delay(Duration::from_millis(cli.search_delay_ms));
    node.set_response_delay(Duration::from_millis(cli.response_delay_ms));
    node.set_replay_searches(cli.replay_searches);
    miroir_devnode::serve_node(listener, node, shutdown).await?;
    Ok(())
}
