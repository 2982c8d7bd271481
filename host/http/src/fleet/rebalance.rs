//! The leader carries the open rebalance run to its end, phase by phase (see
//! [`miroir_cluster::Fleet`] for what each phase means to reads and writes):
//!
//! 1. every `pending` move becomes `copying`; wait until every instance follows it
//!    ([`followers::wait_for_all`]), so every instance writes the
//!    moving shards to their old and new owners;
//! 2. the `copying` moves are copied to their new owners for every index, page by page, and
//!    verified ([`crate::shard_sync::sync_from_sources`]): the shards one receiver takes in one
//!    index are read together (each source's with one filter, every source in the same page
//!    round), and at most `rebalancer.max_concurrent_shards` such copies run at once; a move becomes `switched` once its copies are done: reads use the
//!    new owners;
//! 3. once every move is switched, wait, then every move becomes `cleaned`: writes stop
//!    reaching the old owners; wait again, so no instance still reads or writes them;
//! 4. the old owners delete their copy of each moved shard; joining nodes become active,
//!    draining ones drained; the run is archived.
//!
//! Every step is saved with the leader's fence, so a run survives a crash or a leader change:
//! the next leader resumes at the saved phases (a copy in progress starts over; copying is
//! idempotent). A paused run finishes the copies in flight and takes no new one.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::Method;
use futures_util::stream::{self, StreamExt};
use miroir_cluster::{MovePhase, NodeAuth, NodeBody, Run, RunState, ShardMove};
use miroir_store::{Fence, LeaderState};
use miroir_types::{NodeId, ShardId};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::{archive_run, followers, routes::now, update};
use crate::bookkeeping::shard_filter;
use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// How often an idle leader looks for an open run.
const IDLE_EVERY: Duration = Duration::from_secs(1);

/// Starts the loop; it runs while this instance leads and ends when the election stops.
pub fn spawn(
    state: AppState,
    leader: watch::Receiver<LeaderState>,
    lease: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        crate::leading::while_leading(leader, &lease, "rebalance", |fence| {
            let state = state.clone();
            async move { lead(&state, &fence).await }
        })
        .await;
    })
}

/// Works on open runs for as long as it is not cancelled.
async fn lead(state: &AppState, fence: &Fence) {
    loop {
        match step(state, fence).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(IDLE_EVERY).await,
            Err(error) => {
                tracing::warn!(%error, "rebalance step failed; retrying");
                tokio::time::sleep(IDLE_EVERY * 2).await;
            }
        }
    }
}

/// One step of the open run; returns whether there was work.
async fn step(state: &AppState, fence: &Fence) -> HttpResult<bool> {
    super::refresh(state).await?;
    let view = state.fleet();
    let Some(run) = view.fleet().run.clone() else { return Ok(false) };
    if run.state != RunState::Running {
        return Ok(false);
    }
    let span = tracing::info_span!("rebalance_step", run = run.id, reason = %run.reason,
        moves = run.moves.len());
    work(state, fence, run).instrument(span).await
}

/// The next phase of the running `run`.
async fn work(state: &AppState, fence: &Fence, run: miroir_cluster::Run) -> HttpResult<bool> {
    if run.moves.iter().any(|m| m.phase == MovePhase::Pending) {
        // New owners hold the clients' API keys before they are ever read.
        let receivers: BTreeSet<NodeId> = run.moves.iter().flat_map(|m| m.receivers()).collect();
        let receivers: Vec<NodeId> = receivers.into_iter().collect();
        super::keys::copy_keys_to(state, &receivers).await?;
        advance(state, fence, MovePhase::Pending, MovePhase::Copying).await?;
        followers::wait_for_all(state).await;
        return Ok(true);
    }
    let copying: Vec<ShardMove> =
        run.moves.iter().filter(|m| m.phase == MovePhase::Copying).cloned().collect();
    if !copying.is_empty() {
        copy_moves(state, fence, copying).await?;
        return Ok(true);
    }
    if run.moves.iter().any(|m| m.phase == MovePhase::Switched) {
        // Every instance reads the new owners before the old ones stop receiving writes.
        followers::wait_for_all(state).await;
        advance(state, fence, MovePhase::Switched, MovePhase::Cleaned).await?;
        followers::wait_for_all(state).await;
        return Ok(true);
    }
    in_flight_barrier(state).await?;
    delete_old_copies(state, &run.moves).await?;
    finish(state, fence).await?;
    Ok(true)
}

/// How long a read planned on an older fleet may still be asking the old owners.
const READ_GRACE: Duration = Duration::from_secs(1);

/// Before the old owners delete their copies: every write planned on an older fleet is done
/// (client writes hold their index's write guard while they send, on every instance, so taking
/// each guard once waits for them), and reads planned on it have had [`READ_GRACE`] to finish.
async fn in_flight_barrier(state: &AppState) -> HttpResult<()> {
    for index in state.catalog().list_indexes().await? {
        drop(state.index_write_guard(&index.uid).await?);
    }
    tokio::time::sleep(READ_GRACE).await;
    Ok(())
}

/// Moves every move in phase `from` to `to`.
async fn advance(
    state: &AppState,
    fence: &Fence,
    from: MovePhase,
    to: MovePhase,
) -> HttpResult<()> {
    update(state, Some(fence), |fleet| {
        if let Some(run) = fleet.run.as_mut() {
            for m in run.moves.iter_mut().filter(|m| m.phase == from) {
                m.phase = to;
            }
        }
        Ok(())
    })
    .await
}

/// One copy of a run: shards of one index that one receiver takes, from one or more sources
/// read at once (each source's shards with one filter), verified once per source.
struct CopyJob {
    index: String,
    receiver: NodeId,
    /// Per source, its shards, each with the position of its move in the copied moves.
    sources: Vec<(NodeId, Vec<(ShardId, usize)>)>,
}

impl CopyJob {
    fn shards(&self) -> impl Iterator<Item = &(ShardId, usize)> {
        self.sources.iter().flat_map(|(_, shards)| shards)
    }
}

/// Copies the moves: their shards are grouped by index and receiver into jobs (each reading its
/// sources at once), run `max_concurrent_shards` at a time; a move is switched once every job
/// holding it is done.
async fn copy_moves(state: &AppState, fence: &Fence, moves: Vec<ShardMove>) -> HttpResult<()> {
    let parallel = state.config().rebalancer.max_concurrent_shards.max(1) as usize;
    let jobs = plan_jobs(state, &moves).await?;
    let mut jobs_left = vec![0usize; moves.len()];
    for job in &jobs {
        for (_, position) in job.shards() {
            jobs_left[*position] += 1;
        }
    }
    // Moves without a job (nothing to copy, or every copy lost) are switched with the first
    // progress saved.
    let progress = std::sync::Mutex::new(Progress {
        jobs_left,
        copied: vec![0; moves.len()],
        last_saved: std::time::Instant::now(),
    });
    let (moves, progress) = (&moves, &progress);
    let mut results = stream::iter(jobs)
        .map(|job| async move {
            if !still_running(state) {
                return Ok(());
            }
            let report = copy_job(state, &job).await?;
            let (switched, seconds, copied) = {
                let mut p = progress.lock().expect("progress lock");
                for (shard, position) in job.shards() {
                    p.jobs_left[*position] -= 1;
                    p.copied[*position] +=
                        report.copied_by_shard.get(&shard.get()).copied().unwrap_or(0);
                }
                let now = std::time::Instant::now();
                let seconds = (now - p.last_saved).as_secs_f64();
                p.last_saved = now;
                let switched: Vec<(usize, u64)> = (0..moves.len())
                    .filter(|i| p.jobs_left[*i] == 0)
                    .map(|i| (i, p.copied[i]))
                    .collect();
                (switched, seconds, report.copied)
            };
            update(state, Some(fence), |fleet| {
                if let Some(run) = fleet.run.as_mut() {
                    run.documents_copied += copied;
                    run.copy_seconds += seconds;
                    for (position, copied) in &switched {
                        mark_switched(run, &moves[*position], Some(*copied));
                    }
                }
                Ok(())
            })
            .await
        })
        .buffer_unordered(parallel);
    let mut first_error = None;
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    drop(results);
    if first_error.is_none() && still_running(state) {
        switch_moves_without_jobs(state, fence, moves, progress).await?;
    }
    first_error.map_or(Ok(()), Err)
}

/// What the jobs of one copy have done.
struct Progress {
    /// Per move: its jobs not finished yet.
    jobs_left: Vec<usize>,
    /// Per move: the documents copied for it.
    copied: Vec<u64>,
    /// When the copy time was last added to the run.
    last_saved: std::time::Instant,
}

/// Switches the moves that had no job at all (no index has their shard, or every copy of it
/// was lost with nodes removed by force).
async fn switch_moves_without_jobs(
    state: &AppState,
    fence: &Fence,
    moves: &[ShardMove],
    progress: &std::sync::Mutex<Progress>,
) -> HttpResult<()> {
    let idle: Vec<&ShardMove> = {
        let p = progress.lock().expect("progress lock");
        moves.iter().enumerate().filter(|(i, _)| p.jobs_left[*i] == 0).map(|(_, m)| m).collect()
    };
    update(state, Some(fence), |fleet| {
        if let Some(run) = fleet.run.as_mut() {
            for m in &idle {
                mark_switched(run, m, None);
            }
        }
        Ok(())
    })
    .await
}

/// Switches the run's entry for `m` (while it is still in `m`'s phase), recording the documents
/// copied for it when given.
fn mark_switched(run: &mut Run, m: &ShardMove, copied: Option<u64>) {
    let found = run
        .moves
        .iter_mut()
        .find(|x| x.group == m.group && x.shard == m.shard && x.phase == m.phase);
    if let Some(found) = found {
        if let Some(copied) = copied {
            found.documents_copied = copied;
        }
        found.phase = MovePhase::Switched;
    }
}

fn still_running(state: &AppState) -> bool {
    state.fleet().fleet().run.as_ref().is_some_and(|r| r.state == RunState::Running)
}

/// Groups the moves' shards, for every index that has them, by index and receiver, each with
/// the source it is copied from.
async fn plan_jobs(state: &AppState, moves: &[ShardMove]) -> HttpResult<Vec<CopyJob>> {
    type BySource = std::collections::BTreeMap<NodeId, Vec<(ShardId, usize)>>;
    let mut grouped: std::collections::BTreeMap<(String, NodeId), BySource> =
        std::collections::BTreeMap::new();
    for index in state.catalog().list_indexes().await? {
        for (position, m) in moves.iter().enumerate() {
            if index.shard_count <= m.shard {
                continue;
            }
            for receiver in m.receivers() {
                let Some(source) = pick_source(state, m, &index.uid, &receiver) else {
                    if lost_for_good(state, m) {
                        // Every copy was on nodes removed by force: nothing is left to copy.
                        tracing::error!(shard = m.shard, index = %index.uid, %receiver,
                            "every replica of the shard was on nodes removed by force; its \
                             documents must be restored from a backup");
                        continue;
                    }
                    return Err(HttpError::Internal(format!(
                        "no healthy replica of shard {} of `{}` to copy from",
                        m.shard, index.uid
                    )));
                };
                grouped
                    .entry((index.uid.clone(), receiver))
                    .or_default()
                    .entry(source)
                    .or_default()
                    .push((ShardId::new(m.shard), position));
            }
        }
    }
    let mut jobs = Vec::new();
    for ((index, receiver), by_source) in grouped {
        for sources in crate::shard_sync::copy_rounds(&by_source) {
            jobs.push(CopyJob { index: index.clone(), receiver: receiver.clone(), sources });
        }
    }
    Ok(jobs)
}

/// Runs one job: its shards are made equal on the receiver to their sources'.
async fn copy_job(state: &AppState, job: &CopyJob) -> HttpResult<crate::shard_sync::SyncReport> {
    let sources: Vec<(NodeId, Vec<ShardId>)> = job
        .sources
        .iter()
        .map(|(source, shards)| (source.clone(), shards.iter().map(|(shard, _)| *shard).collect()))
        .collect();
    let metrics = state.rebalance_metrics().clone();
    let before = std::sync::atomic::AtomicU64::new(0);
    let on_page = move |copied: u64| {
        let last = before.swap(copied, std::sync::atomic::Ordering::Relaxed);
        metrics.copied(copied.saturating_sub(last));
    };
    crate::shard_sync::sync_from_sources(state, &job.index, &sources, &job.receiver, &on_page)
        .await
        .map_err(|e| {
            HttpError::Internal(format!(
                "copy of shards {:?} of `{}` to {}: {e}",
                job.shards().map(|(s, _)| s.get()).collect::<Vec<_>>(),
                job.index,
                job.receiver
            ))
        })
}

/// A node to copy `m`'s shard of `index` from: an old owner in the move's group first, else an
/// owner of the shard in another group; healthy, not held stale, not removed by force.
fn pick_source(state: &AppState, m: &ShardMove, index: &str, receiver: &NodeId) -> Option<NodeId> {
    let view = state.fleet();
    let fleet = view.fleet();
    let usable = |n: &NodeId| {
        n != receiver
            && fleet.is_usable_source(n)
            && state.health().is_healthy(n)
            && !state.stale().is_stale(n, index)
    };
    if let Some(n) = m.from.iter().find(|n| usable(n)) {
        return Some(n.clone());
    }
    let shard = ShardId::new(m.shard);
    let assignment = state.assignment(m.shard + 1);
    view.fleet()
        .members()
        .map(|n| n.replica_group.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|g| g != &m.group)
        .flat_map(|g| assignment.owners(&g, shard).to_vec())
        .find(|n| usable(n))
}

/// Whether no copy of `m`'s shard can ever be found: its old owners were all removed by force
/// and no other replica group holds it.
fn lost_for_good(state: &AppState, m: &ShardMove) -> bool {
    let view = state.fleet();
    let fleet = view.fleet();
    let other_groups = fleet.members().any(|n| n.replica_group != m.group && !n.forced);
    !other_groups && m.from.iter().all(|n| fleet.is_forced(n))
}

/// Each old owner deletes its copy of each moved shard, in every index (a node that cannot be
/// reached — a dead node removed by force — is skipped).
async fn delete_old_copies(state: &AppState, moves: &[ShardMove]) -> HttpResult<()> {
    let indexes = state.catalog().list_indexes().await?;
    let clients = state.clients();
    for m in moves {
        for leaver in m.leavers() {
            let Ok(client) = clients.get(&leaver) else { continue };
            for index in indexes.iter().filter(|i| i.shard_count > m.shard) {
                let body =
                    serde_json::to_vec(&json!({ "filter": shard_filter(ShardId::new(m.shard)) }))
                        .map_err(|e| HttpError::Internal(e.to_string()))?;
                let path = format!("/indexes/{}/documents/delete", index.uid);
                let answer = client
                    .send(Method::POST, &path, Some(NodeBody::json(body)), NodeAuth::NodeKey)
                    .await;
                match answer {
                    Ok(answer) if answer.is_success() => {
                        if let Some(uid) = answer.json()["taskUid"].as_u64() {
                            wait_node_task(client, uid).await;
                        }
                    }
                    Ok(answer) => tracing::warn!(node = %leaver, index = %index.uid,
                        status = answer.status, "the old owner refused to delete a moved shard"),
                    Err(error) => tracing::warn!(node = %leaver, index = %index.uid, %error,
                        "cannot delete a moved shard from its old owner"),
                }
            }
        }
    }
    Ok(())
}

/// Waits (at most a minute) until a node finished task `uid`.
async fn wait_node_task(client: &miroir_cluster::NodeClient, uid: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let path = format!("/tasks/{uid}");
        if let Ok(answer) = client.send(Method::GET, &path, None, NodeAuth::NodeKey).await {
            let status = answer.json()["status"].as_str().map(str::to_owned);
            if matches!(status.as_deref(), Some("succeeded" | "failed" | "canceled")) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends the run: it is archived first (so a crash here loses nothing), then nodes take their
/// final state and the run leaves the fleet.
async fn finish(state: &AppState, fence: &Fence) -> HttpResult<()> {
    let Some(mut run) = state.fleet().fleet().run.clone() else { return Ok(()) };
    run.state = RunState::Succeeded;
    run.finished_at = Some(now());
    archive_run(state, &run).await?;
    update(state, Some(fence), |fleet| {
        if fleet.run.as_ref().is_some_and(|r| r.id == run.id) {
            fleet.run = None;
            fleet.complete_change();
        }
        Ok(())
    })
    .await?;
    // Nodes that left hold nothing to repair any more.
    let gone: Vec<_> = state
        .fleet()
        .fleet()
        .nodes
        .iter()
        .filter(|n| !n.state.is_member())
        .map(|n| n.id.clone())
        .collect();
    for node in &gone {
        crate::repairs::forget_node(state, node).await;
    }
    tracing::info!(run = run.id, reason = %run.reason, moved = run.moves.len(),
        copied = run.documents_copied, "rebalance finished");
    Ok(())
}
