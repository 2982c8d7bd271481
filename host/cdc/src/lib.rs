//! Change data capture: every client document write that reached quorum becomes an event in a
//! durable per-index log, readable by long-poll (`GET /_miroir/changes`, served by
//! `miroir-http` through the [`ChangeFeed`](miroir_types::ChangeFeed) port) and shipped to a
//! webhook and to NATS.
//!
//! This crate owns the log's memory side (recent events, waiting readers), the writer that
//! appends to the task store's [`CdcLog`](miroir_store::CdcLog), and the sinks with their
//! cursors, retries and counts. It does not see HTTP requests (the write path calls
//! [`ChangeFeed::record`](miroir_types::ChangeFeed::record)) nor expose metrics (the binary
//! reads [`CdcStats`]). It runs in the gateway, not as a WebAssembly plugin: it needs durable
//! ordered storage, readers that wait, and sockets to NATS, none of which the sandbox gives.
//!
//! Delivery is at least once: an event is durable before the client's write is answered, a
//! sink's cursor moves only after the sink took a batch, and a retried batch carries the same
//! `event_id`s.

mod event;
mod feed;
mod nats;
mod sink;
mod stats;
mod webhook;

use std::sync::Arc;

use miroir_config::CdcConfig;
use miroir_store::{LeaderState, TaskStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use event::event_json;
pub use feed::Feed;
pub use stats::{CdcStats, SinkStats};

/// The running change capture: the feed to install in the gateway, and its sinks' tasks
/// (stopped when this is dropped).
pub struct Cdc {
    /// The feed: what the write path records into and long-poll reads from.
    pub feed: Arc<Feed>,
    tasks: Vec<JoinHandle<()>>,
}

impl Cdc {
    /// Starts change capture per `config` on `store`: the writer, and each configured sink.
    /// Sinks deliver only while `leader` says this instance leads, so several gateway
    /// instances sharing a store deliver each event once (plus retries).
    pub fn start(
        config: &CdcConfig,
        store: Arc<dyn TaskStore>,
        leader: watch::Receiver<LeaderState>,
    ) -> Self {
        let (feed, writer) = Feed::start(config, store);
        let mut tasks = vec![writer];
        if let Some(webhook) = &config.sinks.webhook {
            let sink = webhook::Webhook::new(webhook);
            tasks.push(sink::spawn(
                Arc::clone(&feed),
                sink,
                webhook.batch_size,
                webhook.max_retries,
                leader.clone(),
            ));
        }
        if let Some(nats) = &config.sinks.nats {
            let sink = nats::Nats::new(nats);
            tasks.push(sink::spawn(
                Arc::clone(&feed),
                sink,
                nats::BATCH,
                nats::MAX_RETRIES,
                leader,
            ));
        }
        Cdc { feed, tasks }
    }

    /// What was recorded, delivered and dropped so far.
    pub fn stats(&self) -> CdcStats {
        self.feed.stats()
    }
}

impl Drop for Cdc {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
