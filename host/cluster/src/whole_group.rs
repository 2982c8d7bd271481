//! Whole-group reads: a read that cannot be restricted to shards (node stats) asks every node
//! of one replica group, and moves to the next group when one fails. Part of the scatter engine
//! ([`crate::scatter()`]): the same transport, outcomes and refusal rule.

use miroir_types::NodeId;

use crate::health::HealthRegistry;
use crate::node_client::NodeResponse;
use crate::scatter::{NodeFailure, NodeRequest, NodeTransport, Refused};
use crate::stale::{ReadOutcome, StaleReplicas};
use crate::topology::{Group, Topology};

/// What a whole-group read gathered: every node of one group's answer, or none when no group
/// could answer.
#[derive(Debug, Default)]
pub struct WholeGroup {
    /// Every node of the group that answered, and its 2xx answer, in node order; `None` when
    /// no group had every node answering.
    pub answers: Option<Vec<(NodeId, NodeResponse)>>,
    /// Nodes that failed or answered stale, in order.
    pub failures: Vec<NodeFailure>,
}

/// Sends `request` to every node of one replica group, for a read that cannot be restricted to
/// shards (node stats): inside a group every shard lives on exactly RF nodes, so only a whole
/// group's answers add up. Groups are tried in topology order, those with no node down first;
/// a group with a node stale for `index` (for any index when `None`) is never asked, its sum
/// would miss that node's documents. A node that fails or answers stale (then marked, when
/// `index` is given) has its group passed over for the next; a node's 4xx that is the client's
/// error stops the read.
pub async fn scatter_group<T: NodeTransport>(
    transport: &T,
    topology: &Topology,
    health: &HealthRegistry,
    stale: &StaleReplicas,
    index: Option<&str>,
    request: &NodeRequest,
) -> Result<WholeGroup, Refused> {
    let is_stale = |node: &NodeId| match index {
        Some(uid) => stale.is_stale(node, uid),
        None => stale.is_stale_anywhere(node),
    };
    let mut groups: Vec<&Group> =
        topology.groups().iter().filter(|g| !g.nodes.iter().any(is_stale)).collect();
    groups.sort_by_key(|g| !g.nodes.iter().all(|n| health.is_available(n)));
    let mut gathered = WholeGroup::default();
    for group in groups {
        let calls = group
            .nodes
            .iter()
            .map(|node| async move { (node, transport.send(node, request.clone()).await) });
        let mut answers = Vec::with_capacity(group.nodes.len());
        let mut complete = true;
        for (node, outcome) in futures_util::future::join_all(calls).await {
            let verdict = ReadOutcome::of(&outcome);
            match (verdict, outcome) {
                (ReadOutcome::Answered, Ok(response)) => answers.push((node.clone(), response)),
                (ReadOutcome::Refused, Ok(response)) => {
                    let share = Vec::new();
                    return Err(Refused { node: node.clone(), response, share });
                }
                (outcome, answer) => {
                    complete = false;
                    if let (Some(uid), ReadOutcome::Stale) = (index, outcome) {
                        stale.mark(node, uid);
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
                }
            }
        }
        if complete {
            gathered.answers = Some(answers);
            return Ok(gathered);
        }
    }
    Ok(gathered)
}
