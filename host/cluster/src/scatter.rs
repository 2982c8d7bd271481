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
//!
//! A read may span several indexes at once ([`scatter_parts`], a federated search): each
//! [`ReadPart`] has its own plan, and a node is sent one request per round for every part it
//! answers for; a node that fails has each part's shards asked elsewhere, and only those.
//! [`scatter`] is the one-part case.

use std::collections::{BTreeMap, BTreeSet};
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
    /// What the node was asked for (for a one-part scatter, part 0 and its shards).
    pub share: Share,
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
    let parts = [ReadPart { plan, assignment, view: *view }];
    let shards_of = |share: &[(usize, Vec<ShardId>)]| -> Vec<ShardId> {
        share.iter().flat_map(|(_, shards)| shards.iter().copied()).collect()
    };
    let gathered =
        scatter_parts(transport, &parts, &|node, share| request(node, &shards_of(share))).await?;
    Ok(one_part(gathered))
}

/// One index read of a multi-part scatter: its plan, the assignment of its index and the view
/// of its index.
#[derive(Debug, Clone, Copy)]
pub struct ReadPart<'a> {
    /// The read's plan (group order, covering set).
    pub plan: &'a ReadPlan,
    /// The assignment of the part's index.
    pub assignment: &'a Assignment,
    /// The nodes as a read of the part's index sees them.
    pub view: ReadView<'a>,
}

/// What one node is asked for in one request: each part it answers for (its position in the
/// scatter's parts, in order) with the shards of that part it answers for.
pub type Share = Vec<(usize, Vec<ShardId>)>;

/// What a node is sent for its share of a multi-part read.
pub type ShareRequest<'a> = dyn Fn(&NodeId, &[(usize, Vec<ShardId>)]) -> NodeRequest + Sync + 'a;

/// What a multi-part scatter gathered.
#[derive(Debug, Default)]
pub struct GatheredParts {
    /// Each answering node, what it answered for, and its 2xx answer, in the order they came
    /// (round by round, nodes in id order within a round).
    pub answers: Vec<(NodeId, Share, NodeResponse)>,
    /// Per part, the shards no owner answered for.
    pub missing: Vec<BTreeSet<ShardId>>,
    /// Nodes that failed or answered stale, in order.
    pub failures: Vec<NodeFailure>,
    /// Requests sent in the first round, and in the replacement rounds.
    pub sent: (usize, usize),
}

impl GatheredParts {
    /// How many shards, over every part, no owner answered for.
    pub fn missing_count(&self) -> usize {
        self.missing.iter().map(BTreeSet::len).sum()
    }
}

/// A round: per node, per part, the shards it is asked for.
type Round = BTreeMap<NodeId, BTreeMap<usize, Vec<ShardId>>>;

/// Runs one read over several parts (indexes): each node of a round is sent one request,
/// `request(node, share)`, for every part it answers for. A node that fails or answers stale
/// has each part's shards it held asked of another owner of that part ([`ReadPlan::replacements`]
/// of the part's plan), never a node that failed this read; a 4xx that is the client's error
/// stops the read. A stale answer marks the node for the parts whose index its message names
/// (every part, when there is one); an answer clears its marks for the parts it answered.
pub async fn scatter_parts<T: NodeTransport>(
    transport: &T,
    parts: &[ReadPart<'_>],
    request: &ShareRequest<'_>,
) -> Result<GatheredParts, Refused> {
    let mut missing = vec![BTreeSet::new(); parts.len()];
    let uncovered: BTreeMap<usize, BTreeSet<ShardId>> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| (i, part.plan.covering.missing.iter().copied().collect()))
        .collect();
    let (mut round, left) = replacements(parts, &uncovered, &BTreeSet::new());
    add_missing(&mut missing, left);
    for (i, part) in parts.iter().enumerate() {
        for (node, shards) in &part.plan.covering.nodes {
            let entry = round.entry(node.clone()).or_default().entry(i).or_default();
            entry.extend(shards.iter().copied());
        }
    }
    rounds(transport, parts, request, round, missing, false).await
}

/// Runs one read of `part` in which every shard of `wanted` is asked with a request of its own,
/// `request(node, shard)` (a documents browse, whose order and counts are per shard). A shard
/// of `pinned` is asked first of the node given (the one that answered for it before in the
/// same read), the others of the plan's covering set; failover, stale marks and refusals are
/// as in [`scatter`]. Each answer is for one shard.
pub async fn scatter_each_shard<T: NodeTransport>(
    transport: &T,
    part: ReadPart<'_>,
    wanted: &BTreeSet<ShardId>,
    pinned: &BTreeMap<ShardId, NodeId>,
    request: &(dyn Fn(&NodeId, ShardId) -> NodeRequest + Sync),
) -> Result<Gathered, Refused> {
    let parts = [part];
    let mut round = Round::new();
    let mut unplanned = BTreeSet::new();
    for &shard in wanted {
        let planned = pinned.get(&shard).or_else(|| {
            let covering = &part.plan.covering.nodes;
            covering.iter().find(|(_, shards)| shards.contains(&shard)).map(|(node, _)| node)
        });
        match planned {
            Some(node) => round.entry(node.clone()).or_default().entry(0).or_default().push(shard),
            None => {
                unplanned.insert(shard);
            }
        }
    }
    let (more, left) = replacements(&parts, &BTreeMap::from([(0, unplanned)]), &BTreeSet::new());
    for (node, share) in more {
        round.entry(node).or_default().entry(0).or_default().extend(share.into_values().flatten());
    }
    let mut missing = vec![BTreeSet::new()];
    add_missing(&mut missing, left);
    let one = |node: &NodeId, share: &[(usize, Vec<ShardId>)]| {
        let shard = share.first().and_then(|(_, shards)| shards.first().copied());
        request(node, shard.unwrap_or(ShardId::new(0)))
    };
    let gathered = rounds(transport, &parts, &one, round, missing, true).await?;
    Ok(one_part(gathered))
}

/// A one-part scatter's gathering in the one-part form.
fn one_part(gathered: GatheredParts) -> Gathered {
    let shards_of = |share: Share| -> Vec<ShardId> {
        share.into_iter().flat_map(|(_, shards)| shards).collect()
    };
    Gathered {
        answers: gathered
            .answers
            .into_iter()
            .map(|(node, share, response)| (node, shards_of(share), response))
            .collect(),
        missing: gathered.missing.into_iter().flatten().collect(),
        failures: gathered.failures,
        sent: gathered.sent,
    }
}

/// The rounds of a read, from `round` (its first) until no shard is left to ask. With `split`,
/// a node is sent one request per shard instead of one for its whole share.
async fn rounds<T: NodeTransport>(
    transport: &T,
    parts: &[ReadPart<'_>],
    request: &ShareRequest<'_>,
    mut round: Round,
    missing: Vec<BTreeSet<ShardId>>,
    split: bool,
) -> Result<GatheredParts, Refused> {
    let mut gathered = GatheredParts { missing, ..GatheredParts::default() };
    let mut tried = BTreeSet::new();
    let mut first = true;
    while !round.is_empty() {
        let requests: Vec<(NodeId, Share)> = round
            .into_iter()
            .flat_map(|(node, share)| {
                let share: Share = share.into_iter().collect();
                match split {
                    false => vec![(node, share)],
                    true => share
                        .into_iter()
                        .flat_map(|(part, shards)| {
                            shards.into_iter().map(move |shard| (part, vec![shard]))
                        })
                        .map(|one| (node.clone(), vec![one]))
                        .collect(),
                }
            })
            .collect();
        if first {
            gathered.sent.0 += requests.len();
        } else {
            gathered.sent.1 += requests.len();
        }
        first = false;
        let calls = requests
            .into_iter()
            .map(|(node, share)| ask(transport, parts, request, node, share, &tried));
        let outcomes = futures_util::future::join_all(calls).await;
        let mut failed: BTreeMap<usize, BTreeSet<ShardId>> = BTreeMap::new();
        for (node, share, outcome) in outcomes.into_iter().flatten() {
            let verdict = ReadOutcome::of(&outcome);
            match (verdict, outcome) {
                (ReadOutcome::Answered, Ok(response)) => {
                    for (part, _) in &share {
                        parts[*part].view.stale.clear(&node, parts[*part].view.index);
                    }
                    gathered.answers.push((node, share, response));
                }
                (ReadOutcome::Refused, Ok(response)) => {
                    return Err(Refused { node, response, share })
                }
                (outcome, answer) => {
                    let (status, error) = match answer {
                        Ok(response) => {
                            if outcome == ReadOutcome::Stale {
                                mark_stale(parts, &node, &share, &response);
                            }
                            (Some(response.status), None)
                        }
                        Err(error) => (None, Some(error)),
                    };
                    gathered.failures.push(NodeFailure {
                        node: node.clone(),
                        outcome,
                        status,
                        error,
                    });
                    tried.insert(node);
                    for (part, shards) in share {
                        failed.entry(part).or_default().extend(shards);
                    }
                }
            }
        }
        let (next, left) = replacements(parts, &failed, &tried);
        add_missing(&mut gathered.missing, left);
        round = next;
    }
    Ok(gathered)
}

/// Marks `node` stale for the parts of `share` whose index its stale `response` names (every
/// part of a one-part scatter: a node's message need not name the index it was asked about).
fn mark_stale(parts: &[ReadPart<'_>], node: &NodeId, share: &Share, response: &NodeResponse) {
    let message = match parts.len() {
        1 => None,
        _ => {
            let body: serde_json::Value =
                serde_json::from_slice(&response.body).unwrap_or_default();
            Some(body["message"].as_str().unwrap_or_default().to_owned())
        }
    };
    for (part, _) in share {
        let index = parts[*part].view.index;
        let named = message.as_deref().is_none_or(|m| m.contains(&format!("`{index}`")));
        if named {
            parts[*part].view.stale.mark(node, index);
        }
    }
}

/// The nodes to ask for each part's `wanted` shards, none of `excluded`, merged into one round,
/// and per part the shards no owner is left for.
fn replacements(
    parts: &[ReadPart<'_>],
    wanted: &BTreeMap<usize, BTreeSet<ShardId>>,
    excluded: &BTreeSet<NodeId>,
) -> (Round, BTreeMap<usize, BTreeSet<ShardId>>) {
    let mut round = Round::new();
    let mut left = BTreeMap::new();
    for (&i, shards) in wanted {
        if shards.is_empty() {
            continue;
        }
        let part = &parts[i];
        let (picks, lost) = part.plan.replacements(part.assignment, &part.view, shards, excluded);
        for (node, shards) in picks {
            round.entry(node).or_default().entry(i).or_default().extend(shards);
        }
        if !lost.is_empty() {
            left.insert(i, lost);
        }
    }
    (round, left)
}

fn add_missing(missing: &mut [BTreeSet<ShardId>], left: BTreeMap<usize, BTreeSet<ShardId>>) {
    for (part, shards) in left {
        missing[part].extend(shards);
    }
}

/// One node's request of a round, timed in the view's [`crate::ReplicaLoad`]. When the node
/// has not answered after the hedge delay and the budget allows, the other owners of its shards
/// ([`ReadPlan::replacements`] of each part, never a node already tried) are asked too, and the
/// first complete answer is used: the node's own, or every hedge answering. A hedge that fails
/// leaves the node's answer (or failure) to the usual failover.
async fn ask<T: NodeTransport>(
    transport: &T,
    parts: &[ReadPart<'_>],
    request: &ShareRequest<'_>,
    node: NodeId,
    share: Share,
    tried: &BTreeSet<NodeId>,
) -> Vec<(NodeId, Share, Result<NodeResponse, NodeError>)> {
    let load = parts.first().and_then(|part| part.view.load);
    let send = |node: NodeId, share: &Share, hedge: bool| {
        let call = request(&node, share);
        let count = share.iter().map(|(_, shards)| shards.len()).sum();
        async move {
            let in_flight = load.map(|load| match hedge {
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
    let primary = send(node.clone(), &share, false);
    let Some((load, delay)) = load.and_then(|load| Some((load, load.hedge_delay()?))) else {
        return vec![(node, share, primary.await)];
    };
    let mut primary = std::pin::pin!(primary);
    tokio::select! {
        outcome = &mut primary => return vec![(node, share, outcome)],
        () = tokio::time::sleep(delay) => {}
    }
    let mut excluded = tried.clone();
    excluded.insert(node.clone());
    let wanted: BTreeMap<usize, BTreeSet<ShardId>> =
        share.iter().map(|(part, shards)| (*part, shards.iter().copied().collect())).collect();
    let (picks, left) = replacements(parts, &wanted, &excluded);
    if picks.is_empty() || !left.is_empty() || !load.try_hedge(picks.len()) {
        return vec![(node, share, primary.await)];
    }
    let hedges = picks.len();
    let calls = picks.into_iter().map(|(other, its)| {
        let its: Share = its.into_iter().collect();
        let call = send(other.clone(), &its, true);
        async move { (other, its, call.await) }
    });
    let mut hedge = std::pin::pin!(futures_util::future::join_all(calls));
    tokio::select! {
        outcome = &mut primary => {
            load.hedge_ended(hedges, false);
            vec![(node, share, outcome)]
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
                vec![(node, share, primary.await)]
            }
        }
    }
}

#[cfg(test)]
#[path = "scatter_tests.rs"]
mod tests;
