//! Read-your-writes sessions (`X-Miroir-Session`): a write records its task and the replica
//! group that acknowledged it; a read in the same session goes to that group and, with the
//! `block` strategy, waits (bounded by `session_pinning.max_wait_ms`) until that group's node
//! tasks for the write have finished.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use miroir_cluster::{NodeAuth, QuorumReport};
use miroir_config::PinningStrategy;
use miroir_store::SessionRecord;
use miroir_types::{GroupId, NodeId};

use crate::error::HttpResult;
use crate::AppState;

/// The request header naming a session.
pub const SESSION_HEADER: &str = "x-miroir-session";

/// How often a pinned read polls the write's node tasks.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// The session a request names, when pinning is on.
pub fn session_id(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if !state.config().session_pinning.enabled {
        return None;
    }
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned)
}

/// After a write in a session: remember its task and the first group that reached quorum.
pub async fn record_write(
    state: &AppState,
    session: &str,
    task_uid: u64,
    report: Option<&QuorumReport>,
) -> HttpResult<()> {
    let degraded = report.map(|r| r.degraded_groups.as_slice()).unwrap_or_default();
    let topology = state.topology();
    let Some(group) = topology.groups().iter().find(|g| !degraded.contains(&g.id)) else {
        return Ok(());
    };
    let record = SessionRecord { last_write_task: task_uid, group: group.id.to_string() };
    let ttl = state.config().session_pinning.ttl.get();
    state.store().put_session(session, &record, ttl).await?;
    Ok(())
}

/// Before a read in a session: the group to read from, after waiting (with `block`) for the
/// session's last write to finish on that group's nodes. None when the session wrote nothing.
pub async fn pin_read(state: &AppState, session: &str) -> HttpResult<Option<GroupId>> {
    let Some(record) = state.store().get_session(session).await? else { return Ok(None) };
    let topology = state.topology();
    let Some(group) = topology.groups().iter().find(|g| g.id.as_str() == record.group) else {
        return Ok(None);
    };
    let config = &state.config().session_pinning;
    if config.strategy == PinningStrategy::Block {
        let deadline = Instant::now() + Duration::from_millis(config.max_wait_ms);
        if let Some(task) = state.store().get_task(record.last_write_task).await? {
            let pending: Vec<(NodeId, u64)> = task
                .node_tasks
                .iter()
                .filter_map(|(node, uid)| node.parse::<NodeId>().ok().map(|n| (n, *uid)))
                .filter(|(node, _)| group.nodes.contains(node))
                .collect();
            wait_for_node_tasks(state, &pending, deadline).await;
        }
    }
    Ok(Some(group.id.clone()))
}

/// Poll each node task until it is finished or the deadline passes.
async fn wait_for_node_tasks(state: &AppState, tasks: &[(NodeId, u64)], deadline: Instant) {
    for (node, uid) in tasks {
        let Ok(client) = state.client(node) else { continue };
        let path = format!("/tasks/{uid}");
        while Instant::now() < deadline {
            let finished = match client.send(Method::GET, &path, None, NodeAuth::NodeKey).await {
                Ok(response) if response.is_success() => matches!(
                    response.json()["status"].as_str(),
                    Some("succeeded" | "failed" | "canceled")
                ),
                _ => false,
            };
            if finished {
                break;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}
