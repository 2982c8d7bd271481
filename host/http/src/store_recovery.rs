//! Rebuilding what the task store lost from what the nodes hold.
//!
//! The task store can be lost — a Redis replaced by a fresh one, `FLUSHALL`, a SQLite file
//! deleted or corrupt — while every node still holds its documents and the catalog copy Miroir
//! keeps there ([`crate::node_catalog`]). This module owns the rebuild: it restores every index
//! the store lacks (shard count, primary key, settings version, dates exactly as recorded), and
//! restores the task sequence above the highest task-uid high-water mark published on the
//! nodes, so no uid a client has seen is ever handed out again.
//!
//! A rebuild runs at start, when a request misses an index (at most once per
//! [`MISS_PROBE_EVERY`] for indexes the nodes do not know either), and when the store reports
//! its task sequence lost. One runs at a time per instance; two instances rebuilding at once
//! write the same facts (creating an index that exists is a no-op, raising the sequence never
//! lowers it), so they agree.
//!
//! Task uids: [`Recovery::publish_up_to`] keeps the published mark above every uid this
//! instance hands out, advancing it by [`TASK_UID_BLOCK`] before a uid would cross it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miroir_store::{IndexMeta, StoreError};
use serde::Serialize;

use crate::error::{HttpError, HttpResult};
use crate::node_catalog::{self, NodeCatalog};
use crate::AppState;

/// How far past the latest uid a published high-water mark reaches.
pub const TASK_UID_BLOCK: u64 = 10_000;

/// The least time between two catalog probes for an index the store does not have.
pub const MISS_PROBE_EVERY: Duration = Duration::from_secs(1);

/// What one rebuild found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// Nodes whose catalog was read.
    pub nodes_read: usize,
    /// Live indexes in the nodes' catalog.
    pub indexes_on_nodes: usize,
    /// Indexes the store lacked and now has again.
    pub indexes_restored: Vec<String>,
    /// Indexes the store had and the nodes' catalog did not (written there now).
    pub indexes_published: Vec<String>,
    /// The highest task-uid mark on the nodes.
    pub task_mark: u64,
    /// The sequence the store was given back, when it had lost it.
    pub sequence_restored_to: Option<u64>,
}

impl RebuildReport {
    /// Whether the store lacked anything.
    pub fn restored_anything(&self) -> bool {
        !self.indexes_restored.is_empty() || self.sequence_restored_to.is_some()
    }
}

/// Counters as the metrics expose them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Rebuilds that found the store lacking something.
    pub rebuilds: u64,
    /// Indexes restored from the nodes, in total.
    pub indexes_restored: u64,
    /// Times the task sequence was restored from the nodes' mark.
    pub sequence_restores: u64,
}

/// One instance's recovery state.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The store was checked against the nodes at least once.
    checked: AtomicBool,
    /// A rebuild is restoring something right now.
    rebuilding: AtomicBool,
    /// The highest task-uid mark known to be on the nodes.
    mark: AtomicU64,
    run: tokio::sync::Mutex<()>,
    publish: tokio::sync::Mutex<()>,
    last_miss_probe: Mutex<Option<Instant>>,
    rebuilds: AtomicU64,
    indexes_restored: AtomicU64,
    sequence_restores: AtomicU64,
}

/// Clears the `rebuilding` flag when a rebuild ends, however it ends.
struct Rebuilding<'a>(&'a AtomicBool);

impl Drop for Rebuilding<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Recovery {
    /// Whether the store was checked against the nodes at least once.
    pub fn is_checked(&self) -> bool {
        self.checked.load(Ordering::SeqCst)
    }

    /// Whether a check or rebuild is running now.
    pub fn is_busy(&self) -> bool {
        self.run.try_lock().is_err()
    }

    /// Whether a rebuild is restoring something right now.
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::SeqCst)
    }

    /// Keeps rebuilds from running while the guard lives.
    pub(crate) async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.run.lock().await
    }

    /// The counters.
    pub fn stats(&self) -> RecoveryStats {
        RecoveryStats {
            rebuilds: self.rebuilds.load(Ordering::Relaxed),
            indexes_restored: self.indexes_restored.load(Ordering::Relaxed),
            sequence_restores: self.sequence_restores.load(Ordering::Relaxed),
        }
    }
}

fn catalog_error(error: node_catalog::NodeCatalogError) -> HttpError {
    HttpError::Store(StoreError::Unavailable(format!("index catalog on the nodes: {error}")))
}

/// Checks the store against the nodes and restores what it lacks. `reason` goes to the log.
pub async fn rebuild(state: &AppState, reason: &str) -> HttpResult<RebuildReport> {
    let recovery = state.recovery();
    let _run = recovery.run.lock().await;
    rebuild_locked(state, reason).await
}

async fn rebuild_locked(state: &AppState, reason: &str) -> HttpResult<RebuildReport> {
    let recovery = state.recovery();
    let store = state.store();
    let sequence = store.task_sequence().await?;
    let _flag = Rebuilding(&recovery.rebuilding);
    if sequence.is_none() {
        recovery.rebuilding.store(true, Ordering::SeqCst);
    }
    let nodes: NodeCatalog =
        node_catalog::read(state.clients().iter()).await.map_err(catalog_error)?;
    let mut report = RebuildReport {
        nodes_read: nodes.nodes_read,
        indexes_on_nodes: nodes.live().count(),
        task_mark: nodes.task_mark,
        ..RebuildReport::default()
    };
    // Indexes first, so that an instance seeing the sequence back also finds the indexes.
    for meta in nodes.live() {
        if store.get_index(&meta.uid).await?.is_some() {
            continue;
        }
        recovery.rebuilding.store(true, Ordering::SeqCst);
        match store.create_index(meta).await {
            Ok(()) => report.indexes_restored.push(meta.uid.clone()),
            // Another instance restored (or a client re-created) it meanwhile.
            Err(StoreError::Conflict(_)) => {}
            Err(error) => return Err(error.into()),
        }
        state.read_catalog().forget(&meta.uid);
    }
    // Indexes recorded before the nodes kept a catalog, or whose catalog write every node
    // missed: written there now.
    let mut missing = Vec::new();
    for meta in store.list_indexes().await? {
        if !nodes.indexes.contains_key(&meta.uid) {
            missing.push(node_catalog::index_document(&meta).map_err(catalog_error)?);
            report.indexes_published.push(meta.uid.clone());
        }
    }
    if !missing.is_empty() {
        node_catalog::write(state.clients().iter(), &missing).await.map_err(catalog_error)?;
    }
    recovery.mark.fetch_max(nodes.task_mark, Ordering::SeqCst);
    let lost = match sequence {
        None => true,
        // A new store in front of nodes that published a mark: the old store is gone.
        Some(0) => nodes.task_mark > 0,
        Some(_) => false,
    };
    if lost {
        recovery.rebuilding.store(true, Ordering::SeqCst);
        let restored = store.raise_task_sequence(nodes.task_mark).await?;
        report.sequence_restored_to = Some(restored);
    }
    recovery.checked.store(true, Ordering::SeqCst);
    if report.restored_anything() {
        recovery.rebuilds.fetch_add(1, Ordering::Relaxed);
        recovery
            .indexes_restored
            .fetch_add(report.indexes_restored.len() as u64, Ordering::Relaxed);
        if report.sequence_restored_to.is_some() {
            recovery.sequence_restores.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(
            reason,
            nodes_read = report.nodes_read,
            indexes_on_nodes = report.indexes_on_nodes,
            indexes_restored = ?report.indexes_restored,
            task_mark = report.task_mark,
            sequence_restored_to = report.sequence_restored_to,
            "the task store had lost part of the catalog: rebuilt it from the nodes"
        );
    } else if reason == "start" {
        tracing::info!(
            reason,
            nodes_read = report.nodes_read,
            indexes_on_nodes = report.indexes_on_nodes,
            indexes_published = ?report.indexes_published,
            task_mark = report.task_mark,
            "the task store's catalog agrees with the nodes"
        );
    } else {
        tracing::debug!(reason, task_mark = report.task_mark, "the task store lacks nothing");
    }
    Ok(report)
}

/// Runs the first check against the nodes if none succeeded yet.
pub async fn ensure_checked(state: &AppState) -> HttpResult<()> {
    if state.recovery().checked.load(Ordering::SeqCst) {
        return Ok(());
    }
    let _run = state.recovery().run.lock().await;
    if state.recovery().checked.load(Ordering::SeqCst) {
        return Ok(());
    }
    rebuild_locked(state, "first use").await.map(|_| ())
}

/// The metadata of `uid` when the store lacks it: restored from the nodes if they know the
/// index, else `None`. Probes the nodes at most once per [`MISS_PROBE_EVERY`] unless the store
/// has lost its sequence.
pub async fn on_miss(state: &AppState, uid: &str) -> HttpResult<Option<IndexMeta>> {
    if node_catalog::is_reserved_index(uid) {
        return Ok(None);
    }
    let recovery = state.recovery();
    let _run = recovery.run.lock().await;
    // Another request may have restored it while this one waited.
    if let Some(meta) = state.store().get_index(uid).await? {
        return Ok(Some(meta));
    }
    let lost = state.store().task_sequence().await?.is_none();
    {
        let mut last = recovery.last_miss_probe.lock().expect("miss probe clock");
        let recent = last.is_some_and(|at| at.elapsed() < MISS_PROBE_EVERY);
        if recent && !lost && recovery.checked.load(Ordering::SeqCst) {
            return Ok(None);
        }
        *last = Some(Instant::now());
    }
    match rebuild_locked(state, "a request missed an index").await {
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, index = uid, "cannot check the nodes' catalog");
            return Ok(None);
        }
    }
    Ok(state.store().get_index(uid).await?)
}

/// Records `task` under a new uid that no client has seen, and makes sure the nodes' mark
/// covers it before it is given to anyone. With `change`, the store appends that change event
/// in the same transaction when it can, and its position is returned.
pub async fn create_task(
    state: &AppState,
    task: miroir_store::NewTask,
    change: Option<miroir_store::ChangeEntry>,
) -> HttpResult<(miroir_store::TaskRecord, Option<u64>)> {
    ensure_checked(state).await?;
    let mut attempts = 0;
    let record = loop {
        let created = match &change {
            Some(change) => {
                state.store().create_task_with_change(task.clone(), Arc::clone(change)).await
            }
            None => state.store().create_task(task.clone()).await.map(|record| (record, None)),
        };
        match created {
            Ok(record) => break record,
            Err(StoreError::NotFound(_)) if attempts < 3 => {
                attempts += 1;
                rebuild(state, "the task store lost its task sequence").await?;
            }
            Err(error) => return Err(error.into()),
        }
    };
    publish_up_to(state, record.0.uid).await?;
    Ok(record)
}

/// Makes sure a mark at least `uid` is on the nodes: publishes `uid + TASK_UID_BLOCK` when the
/// known mark is below `uid`.
pub async fn publish_up_to(state: &AppState, uid: u64) -> HttpResult<()> {
    let recovery = state.recovery();
    if uid <= recovery.mark.load(Ordering::SeqCst) {
        return Ok(());
    }
    let _one = recovery.publish.lock().await;
    if uid <= recovery.mark.load(Ordering::SeqCst) {
        return Ok(());
    }
    let mark = uid + TASK_UID_BLOCK;
    node_catalog::write(state.clients().iter(), &[node_catalog::mark_document(mark)])
        .await
        .map_err(catalog_error)?;
    recovery.mark.fetch_max(mark, Ordering::SeqCst);
    tracing::debug!(mark, "published a task-uid high-water mark to the nodes");
    Ok(())
}

/// Writes `meta` to the nodes' catalog; a failure is logged (the next rebuild writes what the
/// nodes lack).
pub async fn publish_index(state: &AppState, meta: &IndexMeta) {
    let written = match node_catalog::index_document(meta) {
        Ok(doc) => node_catalog::write(state.clients().iter(), &[doc]).await,
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        tracing::warn!(%error, index = %meta.uid, "cannot write the index to the nodes' catalog");
    }
}

/// Writes the tombstone of `uid` to the nodes' catalog; a failure is logged.
pub async fn publish_deletion(state: &AppState, uid: &str) {
    let doc = node_catalog::tombstone(uid);
    if let Err(error) = node_catalog::write(state.clients().iter(), &[doc]).await {
        tracing::warn!(%error, index = uid, "cannot write the index deletion to the nodes' catalog");
    }
}

/// Watches the store for a loss while the instance runs: the first check (retried until the
/// nodes answer), then every `every` a look at the task sequence, which a store that was
/// emptied no longer has.
pub async fn watch(state: AppState, every: Duration) {
    loop {
        match rebuild(&state, "start").await {
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(%error, "cannot check the task store against the nodes yet");
                tokio::time::sleep(every.max(Duration::from_millis(500))).await;
            }
        }
    }
    loop {
        tokio::time::sleep(every).await;
        match state.store().task_sequence().await {
            Ok(None) => {
                if let Err(error) = rebuild(&state, "the task store was emptied").await {
                    tracing::warn!(%error, "cannot rebuild the task store from the nodes yet");
                }
            }
            Ok(Some(_)) => {}
            Err(error) => tracing::debug!(%error, "task store unavailable"),
        }
    }
}
