//! The scatter engine: one read sent to a covering set, with failover.
//!
//! A read asks each node of its plan's first round (the covering set, plus replacements for the
//! shards it could not cover) for the shards that node answers for. A node that fails, times
//! out or answers stale ([`ReadOutcome`]) has its shards asked of another owner
//! ([`ReadPlan::replacements`]: same group first, stale owners last, never down), round after
//! round, until every shard answered or no owner is left; a stale node is marked so later reads
//! rank it last. A node's own 4xx is the client's error and stops the read. What is asked of a
//! node, and how answers merge, is the caller's: the engine only says who answered for which
//! shards, what is missing, and what failed. It reaches nodes through [`NodeTransport`], so its
//! failover is tested without sockets.

use std::collections::BTreeSet;
use std::future::Future;

use miroir_types::{NodeId, ShardId};

use crate::assignment::Assignment;
use crate::node_client::{Method, NodeBody, NodeError, NodeResponse};
use crate::read_plan::ReadPlan;
use crate::read_view::ReadView;
use crate::stale::ReadOutcome;

/// One request to a node: method, path (with query) and body.
#[derive(Debug, Clone)]
pub struct NodeRequest {
    /// The method.
    pub method: Method,
    /// The path with its query string.
    pub path: String,
    /// The body, if any.
    pub body: Option<NodeBody>,
}

/// How the engine reaches a node. The gateway implements it over [`crate::NodeClients`] (with
/// the caller's credentials); tests implement it with a fake.
pub trait NodeTransport: Sync {
    /// Sends `request` to `node`.
    fn send(
        &self,
        node: &NodeId,
        request: NodeRequest,
    ) -> impl Future<Output = Result<NodeResponse, NodeError>> + Send;
}

/// A node that did not answer for its shards, and why.
#[derive(Debug, Clone)]
pub struct NodeFailure {
    /// The node.
    pub node: NodeId,
    /// [`ReadOutcome::Failed`] or [`ReadOutcome::Stale`].
    pub outcome: ReadOutcome,
    /// Its HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it gave no answer, when it did not.
    pub error: Option<NodeError>,
}

/// What one scatter gathered.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Each answering node, the shards it answered for, and its 2xx answer, in the order they
    /// came (round by round, nodes in id order within a round).
    pub answers: Vec<(NodeId, Vec<ShardId>, NodeResponse)>,
    /// Shards no owner answered for.
    pub missing: BTreeSet<ShardId>,
    /// Nodes that failed or answered stale, in order.
    pub failures: Vec<NodeFailure>,
    /// Requests sent in the first round, and in the replacement rounds.
    pub sent: (usize, usize),
}

/// Why a scatter stopped before gathering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The node that refused.
    pub node: NodeId,
    /// Its 4xx answer: the client's error, as one node gives it.
    pub response: NodeResponse,
}

/// Runs one read of the plan: `request` says what each node is asked for the shards it answers
/// for. Stale answers are marked in the view's registry, answers clear the node's mark.
pub async fn scatter<T: NodeTransport>(
    transport: &T,
    plan: &ReadPlan,
    assignment: &Assignment,
    view: &ReadView<'_>,
    request: &(dyn Fn(&NodeId, &[ShardId]) -> NodeRequest + Sync),
) -> Result<Gathered, Refused> {
    let mut gathered = Gathered::default();
    let mut tried = BTreeSet::new();
    let uncovered: BTreeSet<ShardId> = plan.covering.missing.iter().copied().collect();
    let (mut round, left) = plan.replacements(assignment, view, &uncovered, &tried);
    gathered.missing.extend(left);
    for (node, shards) in &plan.covering.nodes {
        round.entry(node.clone()).or_default().extend(shards.iter().copied());
    }
    let mut first = true;
    while !round.is_empty() {
        if first {
            gathered.sent.0 += round.len();
        } else {
            gathered.sent.1 += round.len();
        }
        first = false;
        let calls = round.into_iter().map(|(node, shards)| {
            ask(transport, plan, assignment, view, request, node, shards, &tried)
        });
        let outcomes = futures_util::future::join_all(calls).await;
        let mut failed = BTreeSet::new();
        for (node, shards, outcome) in outcomes.into_iter().flatten() {
            let verdict = ReadOutcome::of(&outcome);
            match (verdict, outcome) {
                (ReadOutcome::Answered, Ok(response)) => {
                    view.stale.clear(&node, view.index);
                    gathered.answers.push((node, shards, response));
                }
                (ReadOutcome::Refused, Ok(response)) => return Err(Refused { node, response }),
                (outcome, answer) => {
                    if outcome == ReadOutcome::Stale {
                        view.stale.mark(&node, view.index);
                    }
                    let (status, error) = match answer {
                        Ok(response) => (Some(response.status), None),
                        Err(error) => (None, Some(error)),
                    };
                    gathered.failures.push(NodeFailure {
                        node: node.clone(),
                        outcome,
                        status,
                        error,
                    });
                    tried.insert(node);
                    failed.extend(shards);
                }
            }
        }
        let (next, left) = plan.replacements(assignment, view, &failed, &tried);
        gathered.missing.extend(left);
        round = next;
    }
    Ok(gathered)
}

/// One node's request of a round, timed in the view's [`ReplicaLoad`]. When the node has not
/// answered after the hedge delay and the budget allows, the other owners of its shards
/// ([`ReadPlan::replacements`], never a node already tried) are asked too, and the first
/// complete answer is used: the node's own, or every hedge answering. A hedge that fails
/// leaves the node's answer (or failure) to the usual failover.
#[allow(clippy::too_many_arguments)]
async fn ask<T: NodeTransport>(
    transport: &T,
    plan: &ReadPlan,
    assignment: &Assignment,
    view: &ReadView<'_>,
    request: &(dyn Fn(&NodeId, &[ShardId]) -> NodeRequest + Sync),
    node: NodeId,
    shards: Vec<ShardId>,
    tried: &BTreeSet<NodeId>,
) -> Vec<(NodeId, Vec<ShardId>, Result<NodeResponse, NodeError>)> {
    let send = |node: NodeId, shards: &[ShardId], hedge: bool| {
        let call = request(&node, shards);
        let count = shards.len();
        async move {
            let in_flight = view.load.map(|load| match hedge {
                false => load.start(&node),
                true => load.start_hedge(&node),
            });
            let outcome = crate::node_client::for_shards(count, transport.send(&node, call)).await;
            if let (Some(in_flight), Ok(response)) = (in_flight, &outcome) {
                if response.status < 500 {
                    in_flight.answered();
                }
            }
            outcome
        }
    };
    let primary = send(node.clone(), &shards, false);
    let Some((load, delay)) = view.load.and_then(|load| Some((load, load.hedge_delay()?))) else {
        return vec![(node, shards, primary.await)];
    };
    let mut primary = std::pin::pin!(primary);
    tokio::select! {
        outcome = &mut primary => return vec![(node, shards, outcome)],
        () = tokio::time::sleep(delay) => {}
    }
    let mut excluded = tried.clone();
    excluded.insert(node.clone());
    let wanted: BTreeSet<ShardId> = shards.iter().copied().collect();
    let (picks, left) = plan.replacements(assignment, view, &wanted, &excluded);
    if picks.is_empty() || !left.is_empty() || !load.try_hedge(picks.len()) {
        return vec![(node, shards, primary.await)];
    }
    let hedges = picks.len();
    let calls = picks.into_iter().map(|(other, its)| {
        let call = send(other.clone(), &its, true);
        async move { (other, its, call.await) }
    });
    let mut hedge = std::pin::pin!(futures_util::future::join_all(calls));
    tokio::select! {
        outcome = &mut primary => {
            load.hedge_ended(hedges, false);
            vec![(node, shards, outcome)]
        }
        answers = &mut hedge => {
            let all_answered = answers
                .iter()
                .all(|(_, _, outcome)| ReadOutcome::of(outcome) == ReadOutcome::Answered);
            load.hedge_ended(hedges, all_answered);
            if all_answered {
                load.lost_race(&node);
                answers
            } else {
                vec![(node, shards, primary.await)]
            }
        }
    }
}

#[cfg(test)]
#[path = "scatter_tests.rs"]
mod tests;
