//! The node's whole state behind one lock, and the worker that processes tasks in order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::index::Index;
use crate::keys::KeyStore;
use crate::process::process_task;
use crate::tasks::{Task, TaskKind, TaskStatus};

/// Everything the node holds.
#[derive(Debug, Default)]
pub struct Db {
    pub indexes: BTreeMap<String, Index>,
    pub tasks: BTreeMap<u32, Task>,
    pub next_task_uid: u32,
    pub keys: KeyStore,
    pub last_update: Option<OffsetDateTime>,
    /// Experimental features turned on or off through `PATCH /experimental-features`.
    pub experimental_features: BTreeMap<String, bool>,
    /// Bumped by every applied task: what a cached filter result was computed against.
    pub generation: u64,
    /// The documents the last few filtered browses matched, newest last (see [`FilterCache`]).
    pub filter_cache: Vec<FilterCache>,
}

/// How many filter results [`Db::filter_cache`] keeps: enough for a few lists paged at once
/// (a rebalance copies several shards at a time, each its own filter).
pub const FILTER_CACHE_ENTRIES: usize = 8;

/// The positions (in insertion order) of the documents one filter matched in one index, at one
/// [`Db::generation`]. Paging through a filtered document list asks the same filter again and
/// again; Meilisearch answers each page from its filter bitmaps without a scan, and this keeps
/// the development node from rescanning every document per page. Results are unchanged.
#[derive(Debug)]
pub struct FilterCache {
    /// The index uid.
    pub uid: String,
    /// [`Db::generation`] when it was computed.
    pub generation: u64,
    /// The filter and ids it was computed for, as written by `Debug`.
    pub key: String,
    /// Positions of the matching documents.
    pub positions: std::sync::Arc<Vec<usize>>,
}

impl Db {
    /// The index `uid`, or Meilisearch's `index_not_found`.
    pub fn index(&self, uid: &str) -> Result<&Index, ApiError> {
        self.indexes.get(uid).ok_or_else(|| ApiError::index_not_found(uid))
    }

    /// Add a task to the queue and return a copy of it.
    pub fn enqueue(&mut self, index_uid: Option<String>, kind: TaskKind) -> Task {
        let uid = self.next_task_uid;
        self.next_task_uid += 1;
        let task = Task::new(uid, index_uid, kind, OffsetDateTime::now_utc());
        self.tasks.insert(uid, task.clone());
        task
    }
}

/// The W3C trace headers of a request the node received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedTrace {
    /// The request's method.
    pub method: String,
    /// The request's path, without the query.
    pub path: String,
    /// Its `traceparent` header.
    pub traceparent: String,
    /// Its `tracestate` header, if any.
    pub tracestate: Option<String>,
}

/// How many [`ReceivedTrace`]s a node keeps (the latest).
const TRACES_KEPT: usize = 256;

/// A running node: its state, its master key, and the signal that wakes its task worker.
#[derive(Debug)]
pub struct Node {
    db: Mutex<Db>,
    wake: Notify,
    pub master_key: Option<String>,
    /// Time each task spends in `processing` (0 in normal use; tests raise it to watch states).
    pub processing_delay: Duration,
    /// Milliseconds every search-like request waits before it is answered (0 in normal use;
    /// tests raise it to make a node slow).
    search_delay_ms: AtomicU64,
    /// Milliseconds every request, `/health` included, waits before it is answered: a busy
    /// node, slow but alive (0 in normal use).
    response_delay_ms: AtomicU64,
    /// The trace headers of the latest requests that carried one, oldest first.
    traces: Mutex<std::collections::VecDeque<ReceivedTrace>>,
    /// Whether searches are replayed from memory (see [`crate::routes::replay`]).
    replay_searches: std::sync::atomic::AtomicBool,
    replay: Mutex<crate::routes::replay::Replay>,
}

impl Node {
    pub fn new(master_key: Option<String>, processing_delay: Duration) -> Arc<Self> {
        let mut db = Db::default();
        if let Some(key) = &master_key {
            db.keys = KeyStore::with_default_keys(key);
        }
        Arc::new(Self {
            db: Mutex::new(db),
            wake: Notify::new(),
            master_key,
            processing_delay,
            search_delay_ms: AtomicU64::new(0),
            response_delay_ms: AtomicU64::new(0),
            traces: Mutex::default(),
            replay_searches: std::sync::atomic::AtomicBool::new(false),
            replay: Mutex::default(),
        })
    }

    /// Make every search, facet search, similar and multi-search wait `delay` before answering.
    pub fn set_search_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.search_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Make every request, `/health` included, wait `delay` before answering, as a node
    /// saturated by work answers everything late (`Duration::ZERO` to stop).
    pub fn set_response_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.response_delay_ms.store(ms, Ordering::Relaxed);
    }

    /// The current delay of every request.
    pub fn response_delay(&self) -> Duration {
        Duration::from_millis(self.response_delay_ms.load(Ordering::Relaxed))
    }

    /// Keeps `trace` among the latest received, dropping the oldest past a bound.
    pub fn remember_trace(&self, trace: ReceivedTrace) {
        let mut traces = self.traces.lock().expect("trace list lock");
        if traces.len() == TRACES_KEPT {
            traces.pop_front();
        }
        traces.push_back(trace);
    }

    /// The trace headers of the latest requests that carried a `traceparent`, oldest first.
    pub fn received_traces(&self) -> Vec<ReceivedTrace> {
        self.traces.lock().expect("trace list lock").iter().cloned().collect()
    }

    /// Answer a search already answered from memory until the next task is applied (for
    /// benchmarks of the gateway: see [`crate::routes::replay`]).
    pub fn set_replay_searches(&self, on: bool) {
        self.replay_searches.store(on, Ordering::Relaxed);
    }

    /// Whether searches are replayed from memory.
    pub fn replays_searches(&self) -> bool {
        self.replay_searches.load(Ordering::Relaxed)
    }

    /// The recorded search answers, locked. Never held across an await.
    pub(crate) fn replay(&self) -> MutexGuard<'_, crate::routes::replay::Replay> {
        self.replay.lock().expect("the replay lock is never poisoned: no code panics under it")
    }

    /// The current search delay.
    pub fn search_delay(&self) -> Duration {
        Duration::from_millis(self.search_delay_ms.load(Ordering::Relaxed))
    }

    /// The state, locked. Never held across an await.
    pub fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().expect("the node state lock is never poisoned: no code panics under it")
    }

    /// Enqueue a task and wake the worker.
    pub fn enqueue(&self, index_uid: Option<String>, kind: TaskKind) -> Task {
        let task = self.db().enqueue(index_uid, kind);
        self.wake.notify_one();
        task
    }

    /// Process enqueued tasks one at a time, in uid order, forever.
    pub async fn run_worker(self: Arc<Self>) {
        loop {
            let next = {
                let mut db = self.db();
                let uid = next_task(&db);
                if let Some(uid) = uid {
                    let task = db.tasks.get_mut(&uid).expect("uid was just found");
                    task.transition(TaskStatus::Processing, OffsetDateTime::now_utc())
                        .expect("an enqueued task can start processing");
                }
                uid
            };
            let Some(uid) = next else {
                self.wake.notified().await;
                continue;
            };
            if !self.processing_delay.is_zero() {
                tokio::time::sleep(self.processing_delay).await;
            }
            let mut db = self.db();
            process_task(&mut db, uid);
        }
    }
}

/// The next task to run: cancelations first, then deletions, then the oldest enqueued task, as
/// Meilisearch's scheduler orders them.
fn next_task(db: &Db) -> Option<u32> {
    let enqueued = || db.tasks.values().filter(|t| t.status == TaskStatus::Enqueued);
    enqueued()
        .find(|t| matches!(t.kind, TaskKind::TaskCancelation { .. }))
        .or_else(|| enqueued().find(|t| matches!(t.kind, TaskKind::TaskDeletion { .. })))
        .or_else(|| enqueued().next())
        .map(|t| t.uid)
}
