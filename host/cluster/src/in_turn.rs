//! Reads in turn: a read that one node answers whole (a document by id, an index's settings, a
//! key) asks candidate nodes one at a time, in the order a read ranks them, until one answer
//! decides. Part of the scatter engine ([`crate::scatter()`]): the same transport, outcomes and
//! stale marks; what decides is the caller's [`Turn`].

use miroir_types::NodeId;

use crate::node_client::{NodeError, NodeResponse};
use crate::read_view::ReadView;
use crate::scatter::{NodeFailure, NodeRequest, NodeTransport};
use crate::stale::ReadOutcome;

/// What a read in turn makes of a node's answer (a 2xx, or a 4xx that does not say the node is
/// stale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The read's answer.
    Take,
    /// Not decisive (say, a document this owner lacks: it may have missed a write): ask the
    /// next.
    Pass,
    /// The node does not hold Miroir's copy after all: marked stale, ask the next.
    Stale,
}

/// What a read in turn gathered.
#[derive(Debug, Default)]
pub struct InTurn {
    /// The node whose answer was taken, and its answer.
    pub answer: Option<(NodeId, NodeResponse)>,
    /// Answers judged [`Turn::Pass`], in order.
    pub passed: Vec<(NodeId, NodeResponse)>,
    /// Stale answers (by their status and body, or judged [`Turn::Stale`]), in order.
    pub stale: Vec<(NodeId, NodeResponse)>,
    /// Nodes that failed or answered stale, in order.
    pub failures: Vec<NodeFailure>,
    /// The last failed node's outcome (a 5xx, or no answer), for a read that must say why.
    pub last_failed: Option<Result<NodeResponse, NodeError>>,
}

/// Asks `nodes`, in the order given, one at a time with `request` until `judge` takes an answer.
/// A node that fails (no answer, 5xx) is passed over; with a `view`, one whose answer says it
/// does not hold Miroir's copy of the view's index is marked stale and passed over, and the
/// node whose 2xx is taken has its stale mark cleared. Without a view (a read of no index),
/// every answer below 500 is judged.
pub async fn in_turn<T: NodeTransport>(
    transport: &T,
    view: Option<&ReadView<'_>>,
    nodes: &[NodeId],
    request: &NodeRequest,
    judge: &(dyn Fn(&NodeResponse) -> Turn + Sync),
) -> InTurn {
    let mut gathered = InTurn::default();
    for node in nodes {
        let outcome = transport.send(node, request.clone()).await;
        let mut verdict = ReadOutcome::of(&outcome);
        if verdict == ReadOutcome::Stale && view.is_none() {
            verdict = ReadOutcome::Refused;
        }
        let turn = match (&verdict, &outcome) {
            (ReadOutcome::Answered | ReadOutcome::Refused, Ok(response)) => judge(response),
            (ReadOutcome::Stale, _) => Turn::Stale,
            _ => {
                gathered.failures.push(failure(node, ReadOutcome::Failed, &outcome));
                gathered.last_failed = Some(outcome);
                continue;
            }
        };
        let Ok(response) = outcome else { continue };
        match turn {
            Turn::Take => {
                if let (Some(view), ReadOutcome::Answered) = (view, verdict) {
                    view.stale.clear(node, view.index);
                }
                gathered.answer = Some((node.clone(), response));
                break;
            }
            Turn::Pass => gathered.passed.push((node.clone(), response)),
            Turn::Stale => {
                if let Some(view) = view {
                    view.stale.mark(node, view.index);
                }
                let outcome = Ok(response);
                gathered.failures.push(failure(node, ReadOutcome::Stale, &outcome));
                gathered.stale.extend(outcome.ok().map(|r| (node.clone(), r)));
            }
        }
    }
    gathered
}

fn failure(
    node: &NodeId,
    outcome: ReadOutcome,
    answer: &Result<NodeResponse, NodeError>,
) -> NodeFailure {
    let (status, error) = match answer {
        Ok(response) => (Some(response.status), None),
        Err(error) => (None, Some(error.clone())),
    };
    NodeFailure { node: node.clone(), outcome, status, error }
}
