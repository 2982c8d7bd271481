//! Sending requests to many nodes at once and collecting what each answered.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::Method;
use bytes::Bytes;
use futures_util::future::join_all;
use miroir_cluster::write_routing::targets_of;
use miroir_cluster::{
    in_turn, NodeAuth, NodeBody, NodeError, NodeRequest, NodeResponse, QuorumReport, Turn,
};
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId, ShardId};

use crate::error::{HttpError, HttpResult};
use crate::search::ClientTransport;
use crate::AppState;

/// One node's request in a fan-out.
#[derive(Debug, Clone)]
pub struct NodeCall {
    /// The node.
    pub node: NodeId,
    /// Requests sent in order to that node (bookkeeping first, then the operation).
    pub steps: Vec<NodeStep>,
}

/// One request to a node.
#[derive(Debug, Clone)]
pub struct NodeStep {
    /// The method.
    pub method: Method,
    /// The path with query string.
    pub path: String,
    /// The body, if any.
    pub body: Option<NodeBody>,
    /// Whether to send the node key instead of the client's credentials.
    pub node_key: bool,
}

impl NodeStep {
    /// A step with the client's credentials.
    pub fn new(method: Method, path: impl Into<String>, body: Option<NodeBody>) -> Self {
        NodeStep { method, path: path.into(), body, node_key: false }
    }

    /// A bookkeeping step, sent with the node key.
    pub fn bookkeeping(method: Method, path: impl Into<String>, body: Option<NodeBody>) -> Self {
        NodeStep { method, path: path.into(), body, node_key: true }
    }
}

/// What the last step of a node's call answered.
pub type NodeOutcome = Result<NodeResponse, NodeError>;

/// Runs every call in parallel (the steps of one call in order); returns each node's outcome of
/// its last step. A failed bookkeeping step stops that node's call; a node that is down is not
/// asked and counts as unreachable.
pub async fn run(
    state: &AppState,
    auth: NodeAuth<'_>,
    calls: Vec<NodeCall>,
) -> BTreeMap<NodeId, NodeOutcome> {
    let futures = calls.into_iter().map(|call| async move {
        let outcome = run_steps(state, auth, &call).await;
        (call.node, outcome)
    });
    join_all(futures).await.into_iter().collect()
}

async fn run_steps(state: &AppState, auth: NodeAuth<'_>, call: &NodeCall) -> NodeOutcome {
    if !state.health().is_available(&call.node) {
        // Waiting for a node the probes say is down would only delay the answer.
        return Err(NodeError::Unreachable {
            node: call.node.clone(),
            reason: "down according to its health probes".into(),
        });
    }
    let client = state.client(&call.node)?;
    let mut last = None;
    for step in &call.steps {
        let step_auth = if step.node_key { NodeAuth::NodeKey } else { auth };
        let response =
            client.send(step.method.clone(), &step.path, step.body.clone(), step_auth).await?;
        if !response.is_success() {
            if step.node_key {
                tracing::warn!(node = %call.node, status = response.status, path = %step.path,
                    "bookkeeping request refused");
            }
            return Ok(response);
        }
        last = Some(response);
    }
    last.ok_or_else(|| NodeError::UnknownNode(call.node.clone()))
}

/// The same steps for every node of the topology.
pub fn broadcast(state: &AppState, steps: Vec<NodeStep>) -> Vec<NodeCall> {
    state
        .topology()
        .nodes()
        .map(|node| NodeCall { node: node.clone(), steps: steps.clone() })
        .collect()
}

/// The node tasks that were enqueued, by node id, and the task type the nodes reported.
#[derive(Debug, Default)]
pub struct Enqueued {
    /// Node id → node task uid.
    pub node_tasks: BTreeMap<String, u64>,
    /// The `type` of the first node's summary.
    pub kind: Option<String>,
    /// The nodes that accepted.
    pub accepted: BTreeSet<NodeId>,
    /// Node id → the `enqueuedAt` of the node's summary, which identifies its task later.
    pub enqueued_at: BTreeMap<String, String>,
}

/// Reads the task summaries nodes answered. A node's 4xx is the client's fault and is forwarded
/// at once (every node would say the same); 5xx and unreachable nodes just did not accept.
pub fn collect_enqueued(outcomes: &BTreeMap<NodeId, NodeOutcome>) -> HttpResult<Enqueued> {
    let mut enqueued = Enqueued::default();
    for (node, outcome) in outcomes {
        match outcome {
            Ok(response) if response.is_success() => {
                let json = response.json();
                if let Some(uid) = json.get("taskUid").and_then(serde_json::Value::as_u64) {
                    enqueued.node_tasks.insert(node.to_string(), uid);
                    enqueued.accepted.insert(node.clone());
                    if let Some(at) = json.get("enqueuedAt").and_then(|a| a.as_str()) {
                        enqueued.enqueued_at.insert(node.to_string(), at.to_owned());
                    }
                    if enqueued.kind.is_none() {
                        enqueued.kind =
                            json.get("type").and_then(|t| t.as_str()).map(str::to_owned);
                    }
                }
            }
            Ok(response) if (400..500).contains(&response.status) => {
                return Err(ForwardedError::new(response.status, response.body.to_vec()).into());
            }
            Ok(response) => tracing::warn!(%node, status = response.status, "node refused a write"),
            Err(error) => tracing::warn!(%node, %error, "node unreachable during a write"),
        }
    }
    Ok(enqueued)
}

/// Checks quorum for `shards` given which nodes accepted; `miroir_no_quorum` if a shard has no
/// group at quorum.
pub fn check_quorum(
    state: &AppState,
    shard_count: u32,
    shards: &BTreeSet<ShardId>,
    accepted: &BTreeSet<NodeId>,
) -> HttpResult<QuorumReport> {
    let assignment = state.assignment(shard_count);
    let report = QuorumReport::evaluate(&assignment, state.write_quorum_size(), shards, |n| {
        accepted.contains(n)
    });
    if !report.succeeded() {
        let shards: Vec<String> =
            report.shards_without_quorum.iter().map(ToString::to_string).collect();
        return Err(HttpError::Api(ApiError::new(
            ErrorCode::MiroirNoQuorum,
            format!(
                "No replica group reached a write quorum for shard(s) {}. The write was not \
                 acknowledged.",
                shards.join(", ")
            ),
        )));
    }
    Ok(report)
}

/// The response header listing groups that missed quorum.
pub const DEGRADED: &str = miroir_cluster::DEGRADED_HEADER;

/// Adds `X-Miroir-Degraded` to `response` when some group missed quorum.
pub fn mark_degraded(response: &mut axum::response::Response, report: &QuorumReport) {
    if let Some(value) = report.degraded_header() {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(DEGRADED, value);
        }
    }
}

/// Every shard of an index with `shard_count` shards: what a broadcast must reach.
pub fn all_shards(shard_count: u32) -> BTreeSet<ShardId> {
    (0..shard_count).map(ShardId::new).collect()
}

/// Every node that owns one of `shards`.
pub fn owners(state: &AppState, shard_count: u32, shards: &BTreeSet<ShardId>) -> BTreeSet<NodeId> {
    targets_of(&state.assignment(shard_count), shards)
}

/// Sends one request to the first node of `candidates` that answers, nodes the health probes
/// say are down tried last; used for reads that any of them can serve.
pub async fn first_answer(
    state: &AppState,
    auth: NodeAuth<'_>,
    candidates: impl IntoIterator<Item = NodeId>,
    method: Method,
    path: &str,
    body: Option<Bytes>,
) -> HttpResult<NodeResponse> {
    let mut candidates: Vec<NodeId> = candidates.into_iter().collect();
    candidates.sort_by_key(|node| !state.health().is_available(node));
    let request = NodeRequest { method, path: path.to_owned(), body: body.map(NodeBody::json) };
    let transport = ClientTransport::new(state, auth);
    let read = in_turn(&transport, None, &candidates, &request, &|_| Turn::Take).await;
    match read.answer {
        Some((_, response)) => Ok(response),
        None => Err(why_unanswered(read.last_failed)),
    }
}

/// Why no node answered a read in turn: the last node's 5xx, or why it gave no answer.
fn why_unanswered(last_failed: Option<Result<NodeResponse, NodeError>>) -> HttpError {
    match last_failed {
        Some(Ok(response)) => {
            HttpError::Forwarded(ForwardedError::new(response.status, response.body.to_vec()))
        }
        Some(Err(error)) => HttpError::Node(error),
        None => HttpError::Internal("no node configured".into()),
    }
}

/// Sends one read of index `index` to the owners in `candidates` in the order a read ranks them
/// ([`miroir_cluster::ReadView::rank`]; nodes that are down are tried last), until one answers
/// ([`in_turn`]): a node that answers stale (see [`miroir_cluster::ReadOutcome::Stale`]), or
/// whose 2xx answer `also_stale` rejects, is marked stale for the index and skipped. Returns the
/// first answer (2xx or the client's own 4xx); when every node answered stale, the last of those
/// answers.
pub async fn first_answer_for(
    state: &AppState,
    index: &str,
    auth: NodeAuth<'_>,
    candidates: impl IntoIterator<Item = NodeId>,
    (method, path, body): (Method, &str, Option<Bytes>),
    also_stale: impl Fn(&NodeResponse) -> bool + Sync,
) -> HttpResult<NodeResponse> {
    let candidates: Vec<NodeId> = candidates.into_iter().collect();
    let view = state.read_view(index);
    let mut ordered = view.rank(&candidates);
    for node in &candidates {
        if !ordered.contains(node) && !state.stale().is_held(node, index) {
            ordered.push(node.clone());
        }
    }
    let request = NodeRequest { method, path: path.to_owned(), body: body.map(NodeBody::json) };
    let transport = ClientTransport::new(state, auth);
    let judge = |response: &NodeResponse| match response.is_success() && also_stale(response) {
        true => Turn::Stale,
        false => Turn::Take,
    };
    let mut read = in_turn(&transport, Some(&view), &ordered, &request, &judge).await;
    for (node, response) in &read.stale {
        tracing::warn!(%node, index, status = response.status,
            "a node does not hold Miroir's copy of the index (stale replica)");
    }
    match (read.answer, read.stale.pop()) {
        (Some((_, response)), _) | (None, Some((_, response))) => Ok(response),
        (None, None) => Err(why_unanswered(read.last_failed)),
    }
}
