//! What every sink shares: a cursor per index kept in the task store, batches read from the
//! feed, retries with exponential backoff, counts, and delivering only while leading.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use miroir_store::LeaderState;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Feed;

/// The first retry's delay; each next one doubles, up to `max_retries` doublings.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long an idle sink waits for an append before looking at the store again.
const IDLE: Duration = Duration::from_secs(1);
/// How often a busy sink stores its cursor of an index: a restart (or a new leader) delivers
/// again at most the events of about this span, with the same `event_id`s.
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// Where a sink sends a batch.
#[async_trait]
pub(crate) trait Sink: Send + Sync + 'static {
    /// `webhook`, `nats`: metrics label and the prefix of its cursors.
    fn name(&self) -> &'static str;

    /// Sends `events` of `index` (in cursor order); `Ok` once the receiver took them all.
    async fn deliver(&self, index: &str, events: &[Value]) -> Result<(), String>;
}

/// The delay before retry `attempt` (from 0).
pub(crate) fn backoff(attempt: u32, max_retries: u32) -> Duration {
    let doublings = attempt.min(max_retries).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Runs `sink` until the returned task is aborted.
pub(crate) fn spawn<S: Sink>(
    feed: Arc<Feed>,
    sink: S,
    batch: u32,
    max_retries: u32,
    leader: watch::Receiver<LeaderState>,
) -> JoinHandle<()> {
    tokio::spawn(run(feed, sink, usize::try_from(batch).unwrap_or(100).max(1), max_retries, leader))
}

async fn run<S: Sink>(
    feed: Arc<Feed>,
    sink: S,
    batch: usize,
    max_retries: u32,
    mut leader: watch::Receiver<LeaderState>,
) {
    let counters = feed.register_sink(sink.name());
    let mut cursors: HashMap<String, u64> = HashMap::new();
    // The store's list of logs, read again at most every IDLE (another instance may have started
    // one); this instance's own logs are known from memory at once.
    let mut listed: Option<(Vec<String>, Instant)> = None;
    // Per index, the cursor last stored and when: stored at most every SAVE_EVERY while busy,
    // and whenever the sink goes idle.
    let mut saved: HashMap<String, (u64, Instant)> = HashMap::new();
    loop {
        if !leader.borrow_and_update().is_leader {
            // Another instance delivers; its cursors move in the store meanwhile.
            cursors.clear();
            saved.clear();
            listed = None;
            if leader.changed().await.is_err() {
                return;
            }
            continue;
        }
        let mut appended = feed.appended.subscribe();
        appended.borrow_and_update();
        if listed.as_ref().is_none_or(|(_, at)| at.elapsed() >= IDLE) {
            match feed.store.cdc_indexes().await {
                Ok(indexes) => listed = Some((indexes, Instant::now())),
                Err(error) => {
                    tracing::warn!(%error, sink = sink.name(), "cannot list the change logs");
                    tokio::time::sleep(IDLE).await;
                    continue;
                }
            }
        }
        let mut indexes: Vec<String> = listed.as_ref().map(|(l, _)| l.clone()).unwrap_or_default();
        for index in feed.recent_indexes() {
            if !indexes.contains(&index) {
                indexes.push(index);
            }
        }
        let mut busy = false;
        for index in indexes {
            let key = format!("{}:{index}", sink.name());
            let cursor = match cursors.get(&index) {
                Some(cursor) => *cursor,
                None => match feed.store.cdc_cursor(&key).await {
                    Ok(cursor) => cursor,
                    Err(error) => {
                        tracing::warn!(%error, sink = sink.name(), index, "cannot read the sink's cursor");
                        continue;
                    }
                },
            };
            let page = match feed.page(&index, cursor, batch).await {
                Ok(page) if !page.events.is_empty() => page,
                Ok(_) => {
                    cursors.insert(index, cursor);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, sink = sink.name(), index, "cannot read the change log");
                    continue;
                }
            };
            if page.oldest > cursor + 1 {
                let lost = page.oldest - cursor - 1;
                counters.dropped.fetch_add(lost, Ordering::Relaxed);
                tracing::warn!(
                    sink = sink.name(),
                    index,
                    lost,
                    "change events were trimmed before this sink delivered them"
                );
            }
            let mut attempt = 0;
            while let Err(error) = sink.deliver(&index, &page.events).await {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                let delay = backoff(attempt, max_retries);
                tracing::warn!(sink = sink.name(), index, attempt, ?delay, %error, "change events not delivered; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            counters.delivered.fetch_add(page.events.len() as u64, Ordering::Relaxed);
            if saved.get(&index).is_none_or(|(_, at)| at.elapsed() >= SAVE_EVERY) {
                save(&feed, &sink, &key, &index, page.cursor, &mut saved).await;
            }
            cursors.insert(index, page.cursor);
            busy = true;
        }
        if !busy {
            // Caught up: the cursors delivered since the last save are stored, each at most
            // every SAVE_EVERY (a sink that catches up after every event would otherwise write
            // its cursor once per event); the wait ends when the next save is due.
            let mut wait = IDLE;
            for (index, cursor) in &cursors {
                let since_saved = match saved.get(index) {
                    Some((stored, _)) if stored >= cursor => continue,
                    Some((_, at)) => at.elapsed(),
                    None => SAVE_EVERY,
                };
                if since_saved >= SAVE_EVERY {
                    let key = format!("{}:{index}", sink.name());
                    save(&feed, &sink, &key, index, *cursor, &mut saved).await;
                } else {
                    wait = wait.min(SAVE_EVERY - since_saved);
                }
            }
            let _ = tokio::time::timeout(wait, appended.changed()).await;
        }
    }
}

/// Stores the sink's `cursor` of `index` (under `key`) and notes it in `saved`; a cursor not
/// stored means events delivered again after a restart, with the same event ids.
async fn save<S: Sink>(
    feed: &Feed,
    sink: &S,
    key: &str,
    index: &str,
    cursor: u64,
    saved: &mut HashMap<String, (u64, Instant)>,
) {
    match feed.store.advance_cdc_cursor(key, cursor).await {
        Ok(_) => {
            saved.insert(index.to_owned(), (cursor, Instant::now()));
        }
        Err(error) => {
            tracing::warn!(%error, sink = sink.name(), index, "cannot store the sink's cursor");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max_retries_then_stays() {
        assert_eq!(backoff(0, 5), Duration::from_millis(100));
        assert_eq!(backoff(1, 5), Duration::from_millis(200));
        assert_eq!(backoff(5, 5), Duration::from_millis(3200));
        assert_eq!(backoff(9, 5), Duration::from_millis(3200));
        assert_eq!(backoff(40, 40), MAX_BACKOFF);
    }
}
