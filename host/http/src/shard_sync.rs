//! Copies shards of an index from one node to another while clients keep writing.
//!
//! [`sync_shards`] makes the target's copy of a set of shards equal to the source's, leaving the
//! target's documents of other shards alone ([`sync_shard`] does it for one). It is what a repair
//! (a node that missed writes or came back empty) and a rebalance (shards moving to a new owner)
//! both rely on. Copying several shards at once reads them with one filter, page by page, and
//! verifies them once: a node taking many shards from one source costs one pass, not one per
//! shard.
//!
//! Why it is correct under concurrent writes: every client write holds the index write guard
//! ([`crate::write_guard`]) while it sends its requests to the nodes, on every instance, and each
//! node applies an index's tasks in the order it receives them. Each page is read and written
//! under that guard, after the source has applied every task of the index it had received. So
//! a client write is either enqueued on the source before the page was read (its effect is in
//! the page) or enqueued on both nodes after the page was written to the target (the target
//! applies it after the page, overwriting it). While the guard is held no client write reaches
//! the source, so several pages may be copied under one hold (at most [`GUARD_HOLD`], the next
//! page read while the last one is written, and the last page read written before the hold
//! ends); between holds the guard is released, so client writes interleave. Offsets move while documents are
//! added and deleted, so a page may miss a document or repeat one; the final verification, again
//! under the guard with both nodes idle, compares the primary keys of the shard on both nodes and
//! fixes the difference. When no task reached a source's index from the first page to the
//! verification (its latest task is the same), the pages read it whole: the target then holds
//! every source document plus what it held before, and equal counts prove it holds nothing else,
//! so the keys are compared only when the counts differ.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::Method;
use futures_util::future::join_all;
use miroir_cluster::{NodeAuth, NodeBody, NodeClient, NodeError};
use miroir_store::IndexMeta;
use miroir_types::{NodeId, ShardId};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::bookkeeping::{shard_marker, shards_filter, SHARD_FIELD};
use crate::AppState;

/// How long a node may keep tasks of the index in flight, under the write guard, before a page
/// gives up: well within the guard's 30 s lease, so the guard never lapses while it is held.
const IDLE_WAIT: Duration = Duration::from_secs(20);

/// How long one hold of the write guard goes on copying pages (at least one round): client
/// writes to the index wait at most about this long, plus one round.
const GUARD_HOLD: Duration = Duration::from_millis(50);

/// How long a node may stay busy before a page takes the write guard anyway.
const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// How many times the verification fixes a difference before giving up.
const VERIFY_ATTEMPTS: usize = 5;

/// At most this many shards are copied with one filter (a node's filter parser is not asked for
/// longer `OR` chains).
pub const SHARDS_PER_COPY: usize = 16;

/// Primary keys fetched per request when the key sets are compared.
const KEY_PAGE: usize = 10_000;

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Documents written to the target (pages and missing documents).
    pub copied: u64,
    /// Of them, how many per shard.
    pub copied_by_shard: std::collections::BTreeMap<u32, u64>,
    /// Documents deleted from the target (it held them, the source did not).
    pub deleted: u64,
    /// Documents of the shards on the source at the final verification.
    pub source_count: u64,
    /// Documents of the shards on the target at the final verification.
    pub target_count: u64,
    /// Whether the verification compared primary keys (not only counts: see the module's
    /// documentation).
    pub keys_compared: bool,
}

impl SyncReport {
    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &SyncReport) {
        self.copied += other.copied;
        self.deleted += other.deleted;
        self.source_count += other.source_count;
        self.target_count += other.target_count;
        self.keys_compared |= other.keys_compared;
        for (shard, copied) in &other.copied_by_shard {
            *self.copied_by_shard.entry(*shard).or_default() += copied;
        }
    }
}

/// Why a sync could not finish. The target may hold part of the shard; running the sync again
/// completes it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A node gave no answer.
    #[error(transparent)]
    Unreachable(#[from] NodeError),
    /// A node answered with an error.
    #[error("node `{node}` answered {status} to {what}: {body}")]
    Node {
        /// The node.
        node: NodeId,
        /// What was asked.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The answer, for the log.
        body: String,
    },
    /// A node kept tasks of the index in flight too long, or the write guard was not obtained.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// The task store failed (catalog or write guard).
    #[error("task store: {0}")]
    Store(String),
    /// The index is not in the catalog (deleted meanwhile).
    #[error("index `{0}` not found")]
    UnknownIndex(String),
    /// The shards still differ after every verification attempt.
    #[error("shards {shards:?} of `{index}` still differ after {VERIFY_ATTEMPTS} attempts: source {source_count}, target {target_count}")]
    Diverged {
        /// The index.
        index: String,
        /// The shards.
        shards: Vec<u32>,
        /// Documents on the source.
        source_count: u64,
        /// Documents on the target.
        target_count: u64,
    },
}

impl From<crate::HttpError> for SyncError {
    fn from(error: crate::HttpError) -> Self {
        match error {
            crate::HttpError::Api(api) if api.code() == miroir_types::ErrorCode::MiroirTimeout => {
                SyncError::TimedOut(api.to_string())
            }
            crate::HttpError::Node(node) => SyncError::Unreachable(node),
            other => SyncError::Store(other.to_string()),
        }
    }
}

/// Makes `target`'s copy of shard `shard` of `index` equal to `source`'s: [`sync_shards`] for
/// one shard.
pub async fn sync_shard(
    state: &AppState,
    index: &str,
    shard: ShardId,
    source: &NodeId,
    target: &NodeId,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    sync_shards(state, index, &[shard], source, target, on_page).await
}

/// Makes `target`'s copy of `shards` of `index` equal to `source`'s: [`sync_from_sources`] with
/// one source.
pub async fn sync_shards(
    state: &AppState,
    index: &str,
    shards: &[ShardId],
    source: &NodeId,
    target: &NodeId,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    sync_from_sources(state, index, &[(source.clone(), shards.to_vec())], target, on_page).await
}

/// Makes `target`'s copy of each source's shards of `index` equal to that source's (documents
/// of other shards untouched), while clients keep writing through any instance. The sources are
/// read at once: each page round takes the index write guard once and reads the next page of
/// every source. `on_page` is told the number of documents copied so far after each round. The
/// index is created on the target with Miroir's settings first when it lacks it.
pub async fn sync_from_sources(
    state: &AppState,
    index: &str,
    sources: &[(NodeId, Vec<ShardId>)],
    target: &NodeId,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    copy_from_sources(state, index, sources, target, Mode::Mirror, on_page).await
}

/// Gives `target` every document of `source`'s `shards` of `index` that it lacks, keeping what
/// only the target holds and its own version of what both hold: the union of two copies that
/// each may have missed writes, for a shard with no complete copy left (see
/// [`crate::repair`]). A document deleted on one side only comes back.
pub async fn merge_from_source(
    state: &AppState,
    index: &str,
    source: &NodeId,
    shards: &[ShardId],
    target: &NodeId,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    let sources = [(source.clone(), shards.to_vec())];
    copy_from_sources(state, index, &sources, target, Mode::Merge, on_page).await
}

/// How a copy treats what the target already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The target ends with exactly the source's documents.
    Mirror,
    /// The target keeps its documents and gains those it lacks.
    Merge,
}

async fn copy_from_sources(
    state: &AppState,
    index: &str,
    sources: &[(NodeId, Vec<ShardId>)],
    target: &NodeId,
    mode: Mode,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<SyncReport, SyncError> {
    let meta = state
        .catalog()
        .get_index(index)
        .await?
        .ok_or_else(|| SyncError::UnknownIndex(index.to_owned()))?;
    let dst = &state.client(target)?;
    let clients =
        sources.iter().map(|(node, _)| state.client(node)).collect::<Result<Vec<_>, _>>()?;
    {
        let _guard = state.index_write_guard(index).await?;
        crate::convergence::ensure_on_nodes(state, &meta, &BTreeSet::from([target.clone()])).await;
    }
    let Some(pk) = meta.primary_key.clone() else {
        // No primary key yet: no document was ever written to the index.
        return Ok(SyncReport::default());
    };
    let filters: Vec<String> = sources.iter().map(|(_, shards)| shards_filter(shards)).collect();
    let copies: Vec<ShardCopy<'_>> = sources
        .iter()
        .zip(&clients)
        .zip(&filters)
        .map(|(((_, shards), src), filter)| ShardCopy {
            state,
            meta: &meta,
            pk: &pk,
            shards,
            filter,
            src,
            dst,
            mode,
        })
        .collect();
    let mut reports = vec![SyncReport::default(); copies.len()];
    let mut offsets = vec![0; copies.len()];
    // Each source's latest task when its first page was read (see the module's documentation).
    let mut first_tasks: Vec<Option<LatestTasks>> = vec![None; copies.len()];
    // A merge compares keys only: the bulk rounds would overwrite the target's versions.
    let mut open: Vec<usize> =
        if mode == Mode::Merge { Vec::new() } else { (0..copies.len()).collect() };
    let limit = state.config().rebalancer.batch_size.max(1) as usize;
    let copied = AtomicU64::new(0);
    let progress = |pages: u64| on_page(copied.fetch_add(pages, Ordering::Relaxed) + pages);
    while !open.is_empty() {
        // Waiting first without the guard keeps client writes waiting only for the tasks
        // queued since.
        join_all(open.iter().map(|i| settle(copies[*i].src, index))).await;
        let _guard = state.index_write_guard(index).await?;
        for idle in join_all(open.iter().map(|i| wait_idle(copies[*i].src, index))).await {
            idle?;
        }
        let unmarked: Vec<usize> =
            open.iter().copied().filter(|i| first_tasks[*i].is_none()).collect();
        let latest = join_all(unmarked.iter().map(|i| LatestTasks::read(copies[*i].src, index)));
        for (i, latest) in unmarked.iter().zip(latest.await) {
            first_tasks[*i] = Some(latest?);
        }
        // No client write reaches the sources while the guard is held, so they stay idle:
        // pages go on under this hold for up to GUARD_HOLD.
        let held = tokio::time::Instant::now();
        let holds = open.iter().map(|i| copies[*i].copy_pages(offsets[*i], limit, held, &progress));
        let copied_in_hold = join_all(holds).await;
        let mut still_open = Vec::with_capacity(open.len());
        for (i, outcome) in open.iter().zip(copied_in_hold) {
            let (report, next_offset, more) = outcome?;
            reports[*i].add(&report);
            offsets[*i] = next_offset;
            if more {
                still_open.push(*i);
            }
        }
        open = still_open;
    }
    verify(&copies, &first_tasks, &mut reports, on_page).await?;
    let mut total = SyncReport::default();
    for report in &reports {
        total.add(report);
    }
    Ok(total)
}

/// Splits each source's shards into rounds of [`SHARDS_PER_COPY`]: round `k` holds the `k`-th
/// chunk of every source, so one [`sync_from_sources`] call copies a round.
pub fn copy_rounds<T: Clone>(
    by_source: &std::collections::BTreeMap<NodeId, Vec<T>>,
) -> Vec<Vec<(NodeId, Vec<T>)>> {
    let mut rounds: Vec<Vec<(NodeId, Vec<T>)>> = Vec::new();
    for (source, items) in by_source {
        for (k, chunk) in items.chunks(SHARDS_PER_COPY).enumerate() {
            if rounds.len() <= k {
                rounds.push(Vec::new());
            }
            rounds[k].push((source.clone(), chunk.to_vec()));
        }
    }
    rounds
}

/// One sync's fixed parts.
struct ShardCopy<'a> {
    state: &'a AppState,
    meta: &'a IndexMeta,
    pk: &'a str,
    shards: &'a [ShardId],
    /// The filter selecting the documents of `shards`.
    filter: &'a str,
    src: &'a NodeClient,
    dst: &'a NodeClient,
    mode: Mode,
}

impl ShardCopy<'_> {
    fn uid(&self) -> &str {
        &self.meta.uid
    }

    /// Under one hold of the write guard (taken at `held`): copies pages from `offset` until
    /// the hold has lasted [`GUARD_HOLD`] or the shards are done, writing each page while the
    /// next one is read. The last page read is written before returning: a page is read and
    /// written under the same hold. Tells `progress` each page's size once written. Returns
    /// what was copied, the next offset, and whether pages remain.
    async fn copy_pages(
        &self,
        mut offset: usize,
        limit: usize,
        held: tokio::time::Instant,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(SyncReport, usize, bool), SyncError> {
        let mut report = SyncReport::default();
        let mut page = self.fetch(self.src, offset, limit, None).await?;
        loop {
            offset += page.len();
            let more = page.len() == limit;
            if !more || held.elapsed() >= GUARD_HOLD {
                self.write(&page, &mut report).await?;
                progress(page.len() as u64);
                return Ok((report, offset, more));
            }
            let (written, next) = tokio::join!(
                self.write(&page, &mut report),
                self.fetch(self.src, offset, limit, None)
            );
            written?;
            progress(page.len() as u64);
            page = next?;
        }
    }

    /// Documents of the shards on `node` from `offset`, with only `fields` when given.
    async fn fetch(
        &self,
        node: &NodeClient,
        offset: usize,
        limit: usize,
        fields: Option<Vec<&str>>,
    ) -> Result<Vec<Box<RawValue>>, SyncError> {
        let mut body = json!({ "filter": self.filter, "offset": offset, "limit": limit });
        match fields {
            Some(fields) => body["fields"] = json!(fields),
            // Whole documents, embeddings included: a copy without them would lose vectors
            // the client provided.
            None => body["retrieveVectors"] = json!(true),
        }
        self.fetch_body(node, body).await
    }

    /// The documents a fetch answers, as the node wrote them: a copy forwards them without
    /// building a value tree per document.
    async fn fetch_body(
        &self,
        node: &NodeClient,
        body: Value,
    ) -> Result<Vec<Box<RawValue>>, SyncError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            results: Vec<Box<RawValue>>,
        }
        let path = format!("/indexes/{}/documents/fetch", self.uid());
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let response =
            node.send(Method::POST, &path, Some(NodeBody::json(bytes)), NodeAuth::NodeKey).await?;
        if !response.is_success() {
            return Err(node_error(node, "a documents fetch", &response));
        }
        serde_json::from_slice::<Answer>(&response.body)
            .map(|answer| answer.results)
            .map_err(|_| node_error(node, "a documents fetch (unreadable answer)", &response))
    }

    /// Writes `documents` to the target (add or replace), each carrying its shard marker, and
    /// counts them in `report`.
    async fn write(
        &self,
        documents: &[Box<RawValue>],
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        /// A document's shard marker, read without the rest of the document.
        #[derive(Deserialize)]
        struct Marked {
            #[serde(rename = "_miroir_shard", default)]
            marker: Option<serde_json::Map<String, Value>>,
        }
        if documents.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(documents.iter().map(|d| d.get().len() + 1).sum());
        body.push(b'[');
        for (i, document) in documents.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            let marked: Marked =
                serde_json::from_str(document.get()).unwrap_or(Marked { marker: None });
            let shard = marked
                .marker
                .as_ref()
                .and_then(|m| m.keys().find_map(|key| key.strip_prefix('s')?.parse::<u32>().ok()));
            match (shard, self.shards) {
                (Some(shard), _) => {
                    body.extend_from_slice(document.get().as_bytes());
                    *report.copied_by_shard.entry(shard).or_default() += 1;
                }
                // The filter matched each document on its marker, so it has one; with one
                // shard, a document without (never expected) still gets it.
                (None, [only]) => {
                    let mut value: Value =
                        serde_json::from_str(document.get()).expect("a node's document is JSON");
                    if let Some(fields) = value.as_object_mut() {
                        fields.insert(SHARD_FIELD.to_owned(), shard_marker(*only));
                    }
                    serde_json::to_writer(&mut body, &value).expect("a JSON value serializes");
                    *report.copied_by_shard.entry(only.get()).or_default() += 1;
                }
                (None, _) => body.extend_from_slice(document.get().as_bytes()),
            }
        }
        body.push(b']');
        let path = format!("/indexes/{}/documents?primaryKey={}", self.uid(), self.pk);
        let response = self
            .dst
            .send(Method::POST, &path, Some(NodeBody::json(body)), NodeAuth::NodeKey)
            .await?;
        check(self.dst, "a documents write", response)?;
        report.copied += documents.len() as u64;
        Ok(())
    }

    /// The primary keys of the shards on `node`, as strings (how `ids` takes them), each with
    /// the value the node holds (what a deletion takes).
    async fn keys(
        &self,
        node: &NodeClient,
    ) -> Result<std::collections::BTreeMap<String, Value>, SyncError> {
        let mut keys = std::collections::BTreeMap::new();
        let mut offset = 0;
        loop {
            let page = self.fetch(node, offset, KEY_PAGE, Some(vec![self.pk])).await?;
            let len = page.len();
            for document in page {
                let mut document: Value =
                    serde_json::from_str(document.get()).expect("a node's document is JSON");
                let id = document[self.pk].take();
                let text = match &id {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                keys.insert(text, id);
            }
            if len < KEY_PAGE {
                return Ok(keys);
            }
            offset += len;
        }
    }

    /// With the target and the source idle (under the guard): the keys the target lacks and,
    /// in [`Mode::Mirror`], the ids it holds in excess, and both counts.
    async fn differences(&self) -> Result<Differences, SyncError> {
        let (source_keys, target_keys) =
            tokio::try_join!(self.keys(self.src), self.keys(self.dst))?;
        let missing: Vec<String> =
            source_keys.keys().filter(|key| !target_keys.contains_key(*key)).cloned().collect();
        let extra: Vec<Value> = target_keys
            .iter()
            .filter(|(key, _)| self.mode == Mode::Mirror && !source_keys.contains_key(*key))
            .map(|(_, id)| id.clone())
            .collect();
        Ok(Differences {
            missing,
            extra,
            source_count: source_keys.len() as u64,
            target_count: target_keys.len() as u64,
            by_keys: true,
        })
    }

    /// [`ShardCopy::differences`], unless the source received no task since `first` and both
    /// sides hold as many documents of the shards: then there are none (the pages read the
    /// source whole, and the target holds nothing else).
    async fn differences_if_written(&self, first: &LatestTasks) -> Result<Differences, SyncError> {
        if LatestTasks::read(self.src, self.uid()).await? == *first {
            let (source_count, target_count) =
                tokio::try_join!(self.count(self.src), self.count(self.dst))?;
            if source_count == target_count {
                let (missing, extra) = (Vec::new(), Vec::new());
                let by_keys = false;
                return Ok(Differences { missing, extra, source_count, target_count, by_keys });
            }
        }
        self.differences().await
    }

    /// How many documents of the shards `node` holds.
    async fn count(&self, node: &NodeClient) -> Result<u64, SyncError> {
        let path = format!("/indexes/{}/documents/fetch", self.uid());
        let body = json!({ "filter": self.filter, "limit": 0, "fields": [self.pk] });
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let response =
            node.send(Method::POST, &path, Some(NodeBody::json(bytes)), NodeAuth::NodeKey).await?;
        let answer = check(node, "a documents count", response)?;
        answer["total"].as_u64().ok_or_else(|| SyncError::Node {
            node: node.id().clone(),
            what: "a documents count (no total)",
            status: 200,
            body: answer.to_string(),
        })
    }

    /// Copies the documents the target lacks and deletes those it holds in excess.
    async fn fix(
        &self,
        differences: &Differences,
        report: &mut SyncReport,
        on_page: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), SyncError> {
        let uid = self.uid();
        tracing::debug!(
            index = uid,
            shards = ?self.shards,
            missing = differences.missing.len(),
            extra = differences.extra.len(),
            "shard sync: fixing a difference"
        );
        let batch = self.state.config().rebalancer.batch_size.max(1) as usize;
        for ids in differences.missing.chunks(batch) {
            let page = self
                .fetch_body(
                    self.src,
                    json!({ "ids": ids, "limit": ids.len(), "filter": self.filter,
                        "retrieveVectors": true }),
                )
                .await?;
            self.write(&page, report).await?;
            on_page(report.copied);
        }
        if !differences.extra.is_empty() {
            let path = format!("/indexes/{uid}/documents/delete-batch");
            let bytes = serde_json::to_vec(&differences.extra).expect("JSON values serialize");
            let response = self
                .dst
                .send(Method::POST, &path, Some(NodeBody::json(bytes)), NodeAuth::NodeKey)
                .await?;
            check(self.dst, "a documents deletion", response)?;
            report.deleted += differences.extra.len() as u64;
        }
        Ok(())
    }
}

/// The latest task a node received for an index, and its latest index swap (which changes an
/// index without naming it): equal readings mean the node received no task that could change
/// the index in between.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LatestTasks {
    index: Option<u64>,
    swap: Option<u64>,
}

impl LatestTasks {
    async fn read(node: &NodeClient, uid: &str) -> Result<Self, SyncError> {
        let latest = |path: String| async move {
            let response = node.send(Method::GET, &path, None, NodeAuth::NodeKey).await?;
            let answer = check(node, "a tasks list", response)?;
            Ok::<_, SyncError>(answer["results"][0]["uid"].as_u64())
        };
        let (index, swap) = tokio::try_join!(
            latest(format!("/tasks?indexUids={uid}&limit=1")),
            latest("/tasks?types=indexSwap&limit=1".to_owned())
        )?;
        Ok(LatestTasks { index, swap })
    }
}

/// What one copy's target lacks or holds in excess.
struct Differences {
    missing: Vec<String>,
    extra: Vec<Value>,
    source_count: u64,
    target_count: u64,
    /// Found by comparing keys (else by counts alone).
    by_keys: bool,
}

impl Differences {
    fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty()
    }
}

/// Under the guard with every node of the copies idle: compares each copy's shards on its
/// source and the target (all copies at once), copies what the target lacks and deletes what it
/// holds in excess, until both hold the same keys. The first round compares keys even when the
/// counts agree: a page may have missed a document while the target held one in excess.
///
/// A copy whose source received no task since its first page (`first_tasks`) is compared by
/// counts first, and by keys only when they differ (see the module's documentation).
async fn verify(
    copies: &[ShardCopy<'_>],
    first_tasks: &[Option<LatestTasks>],
    reports: &mut [SyncReport],
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> Result<(), SyncError> {
    let Some(first) = copies.first() else { return Ok(()) };
    let (state, uid, dst) = (first.state, first.uid(), first.dst);
    let mut last: Vec<Differences> = Vec::new();
    for attempt in 0..VERIFY_ATTEMPTS {
        join_all(copies.iter().map(|c| settle(c.src, uid))).await;
        settle(dst, uid).await;
        let _guard = state.index_write_guard(uid).await?;
        for idle in join_all(copies.iter().map(|c| wait_idle(c.src, uid))).await {
            idle?;
        }
        wait_idle(dst, uid).await?;
        let compare = copies.iter().zip(first_tasks).map(|(copy, first)| async move {
            match first {
                Some(first) if attempt == 0 && copy.mode == Mode::Mirror => {
                    copy.differences_if_written(first).await
                }
                _ => copy.differences().await,
            }
        });
        last = futures_util::future::try_join_all(compare).await?;
        for (report, differences) in reports.iter_mut().zip(&last) {
            report.keys_compared |= differences.by_keys;
        }
        if last.iter().all(Differences::is_empty) {
            for (report, differences) in reports.iter_mut().zip(&last) {
                report.source_count = differences.source_count;
                report.target_count = differences.target_count;
            }
            return Ok(());
        }
        for i in 0..copies.len() {
            if last[i].is_empty() {
                continue;
            }
            let others: u64 =
                reports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, r)| r.copied).sum();
            copies[i].fix(&last[i], &mut reports[i], &|copied| on_page(others + copied)).await?;
        }
    }
    let (copy, differences) = copies
        .iter()
        .zip(&last)
        .find(|(_, d)| !d.is_empty())
        .expect("a difference remained after the last attempt");
    Err(SyncError::Diverged {
        index: uid.to_owned(),
        shards: copy.shards.iter().map(|s| s.get()).collect(),
        source_count: differences.source_count,
        target_count: differences.target_count,
    })
}

/// The answer's JSON when it is a success, else the node's error.
fn check(
    node: &NodeClient,
    what: &'static str,
    response: miroir_cluster::NodeResponse,
) -> Result<Value, SyncError> {
    if response.is_success() {
        return Ok(response.json());
    }
    Err(node_error(node, what, &response))
}

/// The node's answer to `what`, as an error.
fn node_error(
    node: &NodeClient,
    what: &'static str,
    response: &miroir_cluster::NodeResponse,
) -> SyncError {
    SyncError::Node {
        node: node.id().clone(),
        what,
        status: response.status,
        body: String::from_utf8_lossy(&response.body).into_owned(),
    }
}

/// Waits (at most [`IDLE_WAIT`]) until `node` has no enqueued or processing task of `uid`: it
/// has applied every write it received for the index.
pub async fn wait_idle(node: &NodeClient, uid: &str) -> Result<(), SyncError> {
    if idle_within(node, uid, IDLE_WAIT).await? {
        return Ok(());
    }
    Err(SyncError::TimedOut(format!(
        "node `{}` kept tasks of `{uid}` in flight for {IDLE_WAIT:?}",
        node.id()
    )))
}

/// Before taking the write guard: waits at most [`SETTLE_WAIT`] for `node` to be idle, so that
/// the wait under the guard (which holds client writes back) is short. Under a steady write
/// load the node may never be idle without the guard; that is fine.
pub async fn settle(node: &NodeClient, uid: &str) {
    let _ = idle_within(node, uid, SETTLE_WAIT).await;
}

/// Whether `node` had no enqueued or processing task of `uid` within `limit`.
async fn idle_within(node: &NodeClient, uid: &str, limit: Duration) -> Result<bool, SyncError> {
    let path = format!("/tasks?indexUids={uid}&statuses=enqueued,processing&limit=1");
    let deadline = tokio::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        let response = node.send(Method::GET, &path, None, NodeAuth::NodeKey).await?;
        let answer = check(node, "a tasks list", response)?;
        if answer["results"].as_array().is_some_and(Vec::is_empty) {
            return Ok(true);
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok(false);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
