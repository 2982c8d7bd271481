//! The scatter engine's failover on a fake transport: no sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use miroir_types::{GroupId, NodeId, ShardId};

use super::*;
use crate::health::{HealthRegistry, HealthThresholds};
use crate::stale::StaleReplicas;
use crate::topology::Topology;

/// What a fake node does.
#[derive(Clone)]
enum Behaviour {
    Answer,
    Status(u16, &'static str),
    Timeout,
}

/// Nodes answering as told; every request is recorded.
struct Fake {
    behaviour: BTreeMap<NodeId, Behaviour>,
    asked: Mutex<Vec<(NodeId, String)>>,
}

impl NodeTransport for Fake {
    fn send(
        &self,
        node: &NodeId,
        request: NodeRequest,
    ) -> impl Future<Output = Result<NodeResponse, NodeError>> + Send {
        self.asked.lock().unwrap().push((node.clone(), request.path.clone()));
        let outcome = match self.behaviour.get(node).cloned().unwrap_or(Behaviour::Answer) {
            Behaviour::Answer => Ok(NodeResponse { status: 200, body: Bytes::from(request.path) }),
            Behaviour::Status(status, body) => Ok(NodeResponse { status, body: Bytes::from(body) }),
            Behaviour::Timeout => {
                Err(NodeError::Timeout { node: node.clone(), timeout: Duration::from_secs(1) })
            }
        };
        std::future::ready(outcome)
    }
}

struct Setup {
    topology: Topology,
    assignment: Assignment,
    health: HealthRegistry,
    stale: StaleReplicas,
}

fn setup(groups: usize, per_group: usize, rf: usize) -> Setup {
    let mut nodes = Vec::new();
    for g in 0..groups {
        for n in 0..per_group {
            nodes.push((node(&format!("g{g}-n{n}")), GroupId::new(format!("g{g}")).unwrap()));
        }
    }
    let topology = Topology::new(nodes, rf).unwrap();
    let assignment = Assignment::new(&topology, 16);
    let health = HealthRegistry::new(topology.nodes(), HealthThresholds::default());
    Setup { topology, assignment, health, stale: StaleReplicas::default() }
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// The request of a node: its shards, written in the path.
fn request(_: &NodeId, shards: &[ShardId]) -> NodeRequest {
    let list: Vec<String> = shards.iter().map(|s| s.get().to_string()).collect();
    NodeRequest { method: Method::POST, path: format!("/s/{}", list.join(",")), body: None }
}

async fn run(s: &Setup, fake: &Fake) -> Result<Gathered, Refused> {
    let view = ReadView::new(&s.health, &s.stale, "products");
    let plan = ReadPlan::new(&s.topology, &s.assignment, &view, 0, None);
    scatter(fake, &plan, &s.assignment, &view, &request).await
}

fn fake(behaviour: impl IntoIterator<Item = (&'static str, Behaviour)>) -> Fake {
    Fake {
        behaviour: behaviour.into_iter().map(|(n, b)| (node(n), b)).collect(),
        asked: Mutex::default(),
    }
}

/// Every shard answered exactly once, each by an owner of it.
fn assert_each_shard_once(s: &Setup, gathered: &Gathered) {
    let mut seen = BTreeSet::new();
    for (node, shards, response) in &gathered.answers {
        assert_eq!(response.status, 200);
        for shard in shards {
            assert!(seen.insert(*shard), "shard {shard} answered twice");
            let group = s.topology.group_of(node).unwrap();
            assert!(s.assignment.owners(group, *shard).contains(node));
        }
    }
    assert_eq!(seen.len() + gathered.missing.len(), 16);
}

#[tokio::test]
async fn every_shard_is_answered_once_by_an_owner() {
    let s = setup(1, 3, 2);
    let gathered = run(&s, &fake([])).await.expect("gathered");
    assert_each_shard_once(&s, &gathered);
    assert!(gathered.missing.is_empty() && gathered.failures.is_empty());
    assert_eq!(gathered.sent.1, 0, "no replacement round");
}

#[tokio::test]
async fn a_failing_node_is_replaced_by_its_replica() {
    let s = setup(1, 3, 2);
    let fake = fake([("g0-n1", Behaviour::Timeout)]);
    let gathered = run(&s, &fake).await.expect("gathered");
    assert_each_shard_once(&s, &gathered);
    assert!(gathered.missing.is_empty());
    assert!(gathered.answers.iter().all(|(n, _, _)| n.as_str() != "g0-n1"));
    if !gathered.failures.is_empty() {
        assert_eq!(gathered.failures[0].outcome, ReadOutcome::Failed);
        assert!(gathered.sent.1 > 0, "a replacement round");
    }
    assert!(s.stale.answers().is_empty(), "a timeout is not stale");
}

#[tokio::test]
async fn a_stale_node_is_marked_and_read_around_in_another_group() {
    let s = setup(2, 2, 1);
    let stale = r#"{"message":"Index `products` not found.","code":"index_not_found"}"#;
    let fake = fake([("g0-n0", Behaviour::Status(404, stale))]);
    // Rotation 0 starts in g0: its node answers stale, g1 answers for its shards.
    let gathered = run(&s, &fake).await.expect("gathered");
    assert_each_shard_once(&s, &gathered);
    assert!(gathered.missing.is_empty());
    assert_eq!(gathered.failures.len(), 1);
    assert_eq!(gathered.failures[0].outcome, ReadOutcome::Stale);
    assert_eq!(gathered.failures[0].status, Some(404));
    assert!(s.stale.is_stale(&node("g0-n0"), "products"));
    // The next read plans the other group from the start: the stale node is not asked.
    let asked_before = fake.asked.lock().unwrap().len();
    let gathered = run(&s, &fake).await.expect("gathered");
    assert!(gathered.failures.is_empty());
    let asked = fake.asked.lock().unwrap();
    assert!(asked[asked_before..].iter().all(|(n, _)| n.as_str() != "g0-n0"), "{asked:?}");
}

#[tokio::test]
async fn shards_without_an_owner_left_are_missing() {
    let s = setup(1, 2, 1);
    let refused = r#"{"message":"Index `products`: Attribute `_miroir_shard.s1` is not filterable.","code":"invalid_search_filter"}"#;
    let fake = fake([("g0-n1", Behaviour::Status(400, refused))]);
    let gathered = run(&s, &fake).await.expect("gathered");
    let lost: BTreeSet<ShardId> = s.assignment.shards_of(&node("g0-n1")).into_iter().collect();
    assert_eq!(gathered.missing, lost);
    assert_each_shard_once(&s, &gathered);
    assert_eq!(s.stale.answers().get(&node("g0-n1")), Some(&1));
}

#[tokio::test]
async fn a_client_error_stops_the_read() {
    let s = setup(1, 2, 1);
    let error =
        r#"{"message":"Attribute `title` is not filterable.","code":"invalid_search_filter"}"#;
    let fake = fake([("g0-n0", Behaviour::Status(400, error))]);
    let refused = run(&s, &fake).await.expect_err("the client's error");
    assert_eq!(refused.node, node("g0-n0"));
    assert_eq!(refused.response.status, 400);
    assert!(s.stale.answers().is_empty());
}
