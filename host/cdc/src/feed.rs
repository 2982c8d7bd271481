//! The feed: the writer appending events to the task store's log, the recent events kept in
//! memory, and reads that wait for the next event.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use miroir_config::CdcConfig;
use miroir_store::TaskStore;
use miroir_types::{ChangeFeed, ChangeFeedError, ChangePage, Recorded, WriteEvent};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::event::{event_json, with_cursor};
use crate::stats::{CdcStats, Counters, SinkCounters};

/// Most events appended in one store call.
const MAX_BATCH: usize = 512;
/// Attempts at appending one batch before its events are dropped (and counted).
const APPEND_ATTEMPTS: u32 = 3;
/// How often a waiting reader looks at the store even without a local append: another gateway
/// instance sharing the store may have appended.
const RECHECK: Duration = Duration::from_secs(1);

/// An event waiting to be appended, and who waits for it.
struct Pending {
    event: WriteEvent,
    done: oneshot::Sender<()>,
}

/// How long an event appended out of order waits in memory for the positions before it.
/// Concurrent writes commit their tasks (and positions) in one order and report them in
/// another; a gap still open after this is taken as positions another instance appended.
const GAP_WAIT: std::time::Duration = Duration::from_millis(500);
/// Most events waiting for a gap to close before it is taken as foreign at once.
const MAX_AHEAD: usize = 256;

/// The newest events of one index, a contiguous run of positions ending at `last`, and the
/// events appended after a gap that has not closed yet.
#[derive(Default)]
struct Recent {
    events: VecDeque<(u64, Value)>,
    last: u64,
    ahead: BTreeMap<u64, (Value, std::time::Instant)>,
    /// When the store last had no event after `last` for this index: until [`RECHECK`] after
    /// it, a reader at `last` is answered "nothing new" from memory (another instance's events
    /// show within that delay).
    store_checked: Option<Instant>,
}

impl Recent {
    /// Adds the event at `seq`: to the run when it follows it, ahead of it otherwise.
    fn add(&mut self, seq: u64, event: Value, capacity: usize) {
        let starting = self.events.is_empty() && self.last == 0;
        if starting || seq == self.last + 1 {
            self.push(seq, event);
        } else if seq > self.last + 1 {
            self.ahead.insert(seq, (event, std::time::Instant::now()));
        }
        // seq <= last: reported after the run went past it (a gap given up); reads of it go
        // to the store.
        self.close_gaps(capacity);
        while self.events.len() > capacity {
            self.events.pop_front();
        }
    }

    /// Moves the events that now follow the run into it; when the oldest waiting event waited
    /// longer than [`GAP_WAIT`] (or too many wait), the run restarts at it and older reads go
    /// to the store.
    fn close_gaps(&mut self, capacity: usize) {
        loop {
            while let Some((event, _)) = self.ahead.remove(&(self.last + 1)) {
                self.push(self.last + 1, event);
            }
            let crowded = self.ahead.len() > MAX_AHEAD.min(capacity);
            let Some(entry) = self.ahead.first_entry() else { return };
            if !crowded && entry.get().1.elapsed() < GAP_WAIT {
                return;
            }
            let (seq, (event, _)) = entry.remove_entry();
            self.events.clear();
            self.push(seq, event);
        }
    }

    fn push(&mut self, seq: u64, mut event: Value) {
        if let Value::Object(fields) = &mut event {
            let mut ordered = serde_json::Map::new();
            ordered.insert("cursor".into(), seq.into());
            ordered.extend(std::mem::take(fields));
            *fields = ordered;
        }
        self.events.push_back((seq, event));
        self.last = seq;
    }
}

/// The change feed of this gateway instance.
pub struct Feed {
    pub(crate) store: Arc<dyn TaskStore>,
    queue: mpsc::Sender<Pending>,
    recent: Mutex<HashMap<String, Recent>>,
    /// Bumped after every append, to wake readers and sinks.
    pub(crate) appended: watch::Sender<u64>,
    counters: Counters,
    sinks: Mutex<Vec<(&'static str, Arc<SinkCounters>)>>,
    memory_events: usize,
    store_events: u64,
    /// This feed, for the trims of events the store appended with their task.
    me: Weak<Feed>,
    /// The oldest position held per index, as those trims know it.
    stored_oldest: tokio::sync::Mutex<HashMap<String, u64>>,
}

impl Feed {
    /// The feed and its writer task.
    pub(crate) fn start(
        config: &CdcConfig,
        store: Arc<dyn TaskStore>,
    ) -> (Arc<Feed>, JoinHandle<()>) {
        let memory_events =
            usize::try_from(config.buffer.memory_events).unwrap_or(usize::MAX).max(1);
        let (queue, pending) = mpsc::channel(memory_events);
        let feed = Arc::new_cyclic(|me| Feed {
            me: me.clone(),
            stored_oldest: tokio::sync::Mutex::new(HashMap::new()),
            store,
            queue,
            recent: Mutex::new(HashMap::new()),
            appended: watch::channel(0).0,
            counters: Counters::default(),
            sinks: Mutex::new(Vec::new()),
            memory_events,
            store_events: config.buffer.store_events.max(1),
        });
        let writer = tokio::spawn(write(Arc::clone(&feed), pending));
        (feed, writer)
    }

    /// What was recorded, delivered and dropped so far.
    pub fn stats(&self) -> CdcStats {
        let sinks = self.sinks.lock().expect("sinks lock poisoned");
        CdcStats {
            recorded: self.counters.recorded.load(Ordering::Relaxed),
            dropped_buffer_full: self.counters.dropped_buffer_full.load(Ordering::Relaxed),
            dropped_store_failed: self.counters.dropped_store_failed.load(Ordering::Relaxed),
            trimmed: self.counters.trimmed.load(Ordering::Relaxed),
            sinks: sinks.iter().map(|(name, c)| c.snapshot(name)).collect(),
        }
    }

    pub(crate) fn register_sink(&self, name: &'static str) -> Arc<SinkCounters> {
        let counters = Arc::new(SinkCounters::default());
        self.sinks.lock().expect("sinks lock poisoned").push((name, Arc::clone(&counters)));
        counters
    }

    /// At most `limit` events of `index` after `since`: from memory when it holds the run that
    /// follows `since`, from the store otherwise.
    pub(crate) async fn page(
        &self,
        index: &str,
        since: u64,
        limit: usize,
    ) -> Result<ChangePage, ChangeFeedError> {
        {
            let recent = self.recent.lock().expect("recent lock poisoned");
            if let Some(run) = recent.get(index) {
                let front = run.events.front().map(|(seq, _)| *seq);
                let covered = front.is_some_and(|front| front <= since + 1);
                if covered && run.last > since {
                    let events: Vec<Value> = run
                        .events
                        .iter()
                        .filter(|(seq, _)| *seq > since)
                        .take(limit)
                        .map(|(_, event)| event.clone())
                        .collect();
                    let cursor = events.last().and_then(|e| e["cursor"].as_u64()).unwrap_or(since);
                    return Ok(ChangePage { events, cursor, oldest: since + 1, head: run.last });
                }
                let checked = run.store_checked.is_some_and(|at| at.elapsed() < RECHECK);
                if covered && run.last == since && run.ahead.is_empty() && checked {
                    return Ok(ChangePage {
                        events: Vec::new(),
                        cursor: since,
                        oldest: since + 1,
                        head: since,
                    });
                }
            }
        }
        let storage = |e: miroir_store::StoreError| ChangeFeedError::Storage(e.to_string());
        let entries = self.store.cdc_entries(index, since, limit).await.map_err(storage)?;
        let span = self.store.cdc_span(index).await.map_err(storage)?;
        let oldest = match (entries.first(), span) {
            (Some(first), _) if first.seq == since + 1 => since + 1,
            (_, Some((first, _))) if first > since + 1 => first,
            _ => since + 1,
        };
        let events: Vec<Value> = entries.iter().map(|e| with_cursor(e.seq, &e.payload)).collect();
        let cursor = entries.last().map_or(since, |e| e.seq);
        let head = span.map_or(cursor, |(_, last)| last.max(cursor));
        if head == since {
            let mut recent = self.recent.lock().expect("recent lock poisoned");
            if let Some(run) = recent.get_mut(index).filter(|run| run.last == since) {
                run.store_checked = Some(Instant::now());
            }
        }
        Ok(ChangePage { events, cursor, oldest, head })
    }

    /// The indexes with events kept in memory (appended since this instance started).
    pub(crate) fn recent_indexes(&self) -> Vec<String> {
        self.recent.lock().expect("recent lock poisoned").keys().cloned().collect()
    }

    /// Keeps the appended `events` (index, event JSON, position) in memory.
    fn remember(&self, events: Vec<(String, Value)>, positions: &[u64]) {
        let mut recent = self.recent.lock().expect("recent lock poisoned");
        for ((index, event), seq) in events.into_iter().zip(positions) {
            recent.entry(index).or_default().add(*seq, event, self.memory_events);
        }
    }

    /// Keeps the log of `index`, whose last position is `last`, within `store_events`.
    async fn trim(&self, index: &str, last: u64, oldest: &mut HashMap<String, u64>) {
        let first = match oldest.get(index) {
            Some(first) => *first,
            None => match self.store.cdc_span(index).await {
                Ok(span) => span.map_or(last, |(first, _)| first),
                Err(error) => {
                    tracing::warn!(%error, index, "cannot read the change log's span");
                    return;
                }
            },
        };
        oldest.insert(index.to_owned(), first);
        if last + 1 - first <= self.store_events {
            return;
        }
        let below = last + 1 - self.store_events;
        match self.store.trim_cdc_entries(index, below).await {
            Ok(removed) => {
                self.counters.trimmed.fetch_add(removed, Ordering::Relaxed);
                oldest.insert(index.to_owned(), below);
                if let Some(run) = self.recent.lock().expect("recent lock poisoned").get_mut(index)
                {
                    run.events.retain(|(seq, _)| *seq >= below);
                }
            }
            Err(error) => tracing::warn!(%error, index, "cannot trim the change log"),
        }
    }
}

/// The writer: appends what `record` queued, in batches, then wakes readers.
async fn write(feed: Arc<Feed>, mut pending: mpsc::Receiver<Pending>) {
    let mut oldest: HashMap<String, u64> = HashMap::new();
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let events: Vec<(String, Value)> =
            batch.iter().map(|p| (p.event.index.clone(), event_json(&p.event))).collect();
        let rows: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|(index, event)| (index.clone(), serde_json::to_vec(event).unwrap_or_default()))
            .collect();
        let mut attempt = 0;
        let appended = loop {
            attempt += 1;
            match feed.store.append_cdc_entries(&rows).await {
                Ok(positions) => break Some(positions),
                Err(error) if attempt >= APPEND_ATTEMPTS => {
                    tracing::error!(%error, events = rows.len(), "change events dropped: the task store refused them");
                    break None;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot append change events; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        };
        let count = batch.len() as u64;
        let Some(positions) = appended else {
            feed.counters.dropped_store_failed.fetch_add(count, Ordering::Relaxed);
            for p in batch {
                let _ = p.done.send(());
            }
            continue;
        };
        let mut last: HashMap<String, u64> = HashMap::new();
        for ((index, _), seq) in events.iter().zip(&positions) {
            last.insert(index.clone(), *seq);
        }
        feed.remember(events, &positions);
        feed.counters.recorded.fetch_add(count, Ordering::Relaxed);
        feed.appended.send_modify(|n| *n = n.wrapping_add(1));
        for p in batch {
            let _ = p.done.send(());
        }
        for (index, last) in last {
            feed.trim(&index, last, &mut oldest).await;
        }
    }
}

#[async_trait]
impl ChangeFeed for Feed {
    fn record(&self, event: WriteEvent) -> Recorded {
        let (done, appended) = oneshot::channel();
        match self.queue.try_send(Pending { event, done }) {
            Ok(()) => Box::pin(async move {
                // Err: the writer stopped (the gateway is stopping); nothing more to wait for.
                let _ = appended.await;
            }),
            Err(error) => {
                let dropped = self.counters.dropped_buffer_full.fetch_add(1, Ordering::Relaxed) + 1;
                let event = match error {
                    mpsc::error::TrySendError::Full(p) | mpsc::error::TrySendError::Closed(p) => {
                        p.event
                    }
                };
                tracing::warn!(
                    event_id = %event.event_id,
                    dropped,
                    "change event dropped: cdc.buffer.memory_events events are already waiting to be stored"
                );
                Box::pin(std::future::ready(()))
            }
        }
    }

    fn serialize(&self, event: &WriteEvent) -> Option<Vec<u8>> {
        Some(serde_json::to_vec(&event_json(event)).unwrap_or_default())
    }

    fn stored_with_task(&self, event: WriteEvent, position: u64) {
        let index = event.index.clone();
        self.remember(vec![(index.clone(), event_json(&event))], &[position]);
        self.counters.recorded.fetch_add(1, Ordering::Relaxed);
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        if let Some(feed) = self.me.upgrade() {
            tokio::spawn(async move {
                let mut oldest = feed.stored_oldest.lock().await;
                feed.trim(&index, position, &mut oldest).await;
            });
        }
    }

    async fn changes(
        &self,
        index: &str,
        since: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<ChangePage, ChangeFeedError> {
        let mut appended = self.appended.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            appended.borrow_and_update();
            let page = self.page(index, since, limit).await?;
            let now = Instant::now();
            if !page.events.is_empty() || now >= deadline {
                return Ok(page);
            }
            let nap = (deadline - now).min(RECHECK);
            match tokio::time::timeout(nap, appended.changed()).await {
                Ok(Ok(())) | Err(_) => {}
                Ok(Err(_)) => tokio::time::sleep(nap).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(run: &Recent) -> Vec<u64> {
        run.events.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn events_reported_out_of_order_join_the_run_in_order() {
        let mut run = Recent::default();
        for seq in [1, 3, 2, 5, 4] {
            run.add(seq, serde_json::json!({"n": seq}), 100);
        }
        assert_eq!(positions(&run), [1, 2, 3, 4, 5]);
        assert_eq!(run.last, 5);
        assert!(run.ahead.is_empty());
        let cursors: Vec<u64> =
            run.events.iter().map(|(_, e)| e["cursor"].as_u64().unwrap()).collect();
        assert_eq!(cursors, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_gap_that_does_not_close_restarts_the_run_after_it() {
        let mut run = Recent::default();
        run.add(1, serde_json::json!({}), 100);
        run.add(3, serde_json::json!({}), 100);
        assert_eq!(positions(&run), [1], "3 waits for 2");
        run.ahead.get_mut(&3).unwrap().1 -= GAP_WAIT;
        run.add(4, serde_json::json!({}), 100);
        assert_eq!(positions(&run), [3, 4], "2 was appended elsewhere: the run restarts at 3");
        run.add(2, serde_json::json!({}), 100);
        assert_eq!(
            positions(&run),
            [3, 4],
            "a position reported after its gap was given up is left to the store"
        );
    }

    #[test]
    fn too_many_waiting_events_give_the_gap_up() {
        let mut run = Recent::default();
        run.add(1, serde_json::json!({}), 4);
        for seq in 3..=7 {
            run.add(seq, serde_json::json!({}), 4);
        }
        assert_eq!(positions(&run), [4, 5, 6, 7]);
        assert!(run.ahead.is_empty());
    }
}
