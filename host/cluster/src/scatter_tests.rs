//! The scatter engine's failover on a fake transport: no sockets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use miroir_types::{GroupId, NodeId, ShardId};

use super::*;
use crate::health::{HealthRegistry, HealthThresholds};
use crate::in_turn::{in_turn, Turn};
use crate::stale::StaleReplicas;
use crate::topology::Topology;
use crate::whole_group::{scatter_group, WholeGroup};

/// What a fake node does.
#[derive(Clone)]
enum Behaviour {
    Answer,
    Status(u16, &'static str),
    Timeout,
    /// No answer for this long (tokio time), then a timeout.
    Hang(Duration),
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
        let behaviour = self.behaviour.get(node).cloned().unwrap_or(Behaviour::Answer);
        let node = node.clone();
        async move {
            let timeout = |timeout| Err(NodeError::Timeout { node: node.clone(), timeout });
            match behaviour {
                Behaviour::Answer => {
                    Ok(NodeResponse { status: 200, body: Bytes::from(request.path) })
                }
                Behaviour::Status(status, body) => {
                    Ok(NodeResponse { status, body: Bytes::from(body) })
                }
                Behaviour::Timeout => timeout(Duration::from_secs(1)),
                Behaviour::Hang(delay) => {
                    tokio::time::sleep(delay).await;
                    timeout(delay)
                }
            }
        }
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

// Multi-part reads (federated search): one request per node for every index it answers for.

/// The request of a node in a multi-part read: `p<part>:<shards>` per part, `;`-separated.
fn parts_request(_: &NodeId, share: &[(usize, Vec<ShardId>)]) -> NodeRequest {
    let parts: Vec<String> = share
        .iter()
        .map(|(part, shards)| {
            let list: Vec<String> = shards.iter().map(|s| s.get().to_string()).collect();
            format!("p{part}:{}", list.join(","))
        })
        .collect();
    NodeRequest { method: Method::POST, path: format!("/m/{}", parts.join(";")), body: None }
}

/// Two indexes, `products` on 16 shards and `books` on 8, over the same nodes.
struct TwoIndexes {
    s: Setup,
    books: Assignment,
}

fn two_indexes(groups: usize, per_group: usize, rf: usize) -> TwoIndexes {
    let s = setup(groups, per_group, rf);
    let books = Assignment::new(&s.topology, 8);
    TwoIndexes { s, books }
}

async fn run_parts(t: &TwoIndexes, fake: &Fake) -> Result<GatheredParts, Refused> {
    let products = ReadView::new(&t.s.health, &t.s.stale, "products");
    let books = ReadView::new(&t.s.health, &t.s.stale, "books");
    let plans = [
        ReadPlan::new(&t.s.topology, &t.s.assignment, &products, 0, None),
        ReadPlan::new(&t.s.topology, &t.books, &books, 0, None),
    ];
    let parts = [
        ReadPart { plan: &plans[0], assignment: &t.s.assignment, view: products },
        ReadPart { plan: &plans[1], assignment: &t.books, view: books },
    ];
    scatter_parts(fake, &parts, &parts_request).await
}

/// Every shard of each part answered exactly once, by an owner of it in that part's index.
fn assert_each_part_once(t: &TwoIndexes, gathered: &GatheredParts) {
    let mut seen: [BTreeSet<ShardId>; 2] = Default::default();
    for (node, share, response) in &gathered.answers {
        assert_eq!(response.status, 200);
        let group = t.s.topology.group_of(node).unwrap();
        for (part, shards) in share {
            let assignment = if *part == 0 { &t.s.assignment } else { &t.books };
            for shard in shards {
                assert!(seen[*part].insert(*shard), "part {part} shard {shard} answered twice");
                assert!(assignment.owners(group, *shard).contains(node));
            }
        }
    }
    assert_eq!(seen[0].len() + gathered.missing[0].len(), 16);
    assert_eq!(seen[1].len() + gathered.missing[1].len(), 8);
}

#[tokio::test]
async fn a_multi_part_read_asks_each_node_once_for_every_part() {
    let t = two_indexes(2, 3, 1);
    let fake = fake([]);
    let gathered = run_parts(&t, &fake).await.expect("gathered");
    assert_each_part_once(&t, &gathered);
    assert_eq!(gathered.missing_count(), 0);
    let asked = fake.asked.lock().unwrap();
    let nodes: BTreeSet<&NodeId> = asked.iter().map(|(n, _)| n).collect();
    assert_eq!(nodes.len(), asked.len(), "one request per node: {asked:?}");
    assert_eq!(gathered.sent, (3, 0), "one group of three nodes");
    assert!(asked.iter().all(|(n, path)| path.contains("p0:")
        && path.contains("p1:")
        && t.s.topology.group_of(n) == t.s.topology.group_of(&asked[0].0)));
}

#[tokio::test]
async fn a_failed_node_has_only_its_pairs_asked_of_other_owners() {
    let t = two_indexes(1, 3, 2);
    let fake = fake([("g0-n1", Behaviour::Status(503, "overloaded"))]);
    let gathered = run_parts(&t, &fake).await.expect("gathered");
    assert_each_part_once(&t, &gathered);
    assert_eq!(gathered.missing_count(), 0);
    assert!(gathered.answers.iter().all(|(n, _, _)| n.as_str() != "g0-n1"));
    let failed: Vec<_> = gathered.failures.iter().map(|f| (f.node.as_str(), f.outcome)).collect();
    assert_eq!(failed, vec![("g0-n1", ReadOutcome::Failed)]);
    // The replacement round re-asks exactly the (part, shard) pairs the node held.
    let asked = fake.asked.lock().unwrap();
    let first = asked.iter().find(|(n, _)| n.as_str() == "g0-n1").expect("asked").1.clone();
    let replaced: BTreeSet<String> =
        asked[gathered.sent.0..].iter().flat_map(|(_, path)| pairs(path)).collect();
    assert_eq!(replaced, pairs(&first).collect::<BTreeSet<_>>());
    assert!(gathered.sent.1 > 0);
}

/// The `(part, shard)` pairs of a multi-part request path, as `p<part>/<shard>`.
fn pairs(path: &str) -> impl Iterator<Item = String> + '_ {
    path.trim_start_matches("/m/").split(';').filter(|p| !p.is_empty()).flat_map(|part| {
        let (part, shards) = part.split_once(':').unwrap();
        shards.split(',').filter(|s| !s.is_empty()).map(move |s| format!("{part}/{s}"))
    })
}

#[tokio::test]
async fn a_stale_node_is_marked_for_the_index_it_names_and_read_around() {
    let t = two_indexes(2, 2, 1);
    let stale =
        r#"{"message":"Inside `.queries[1]`: Index `books` not found.","code":"index_not_found"}"#;
    let fake = fake([("g0-n0", Behaviour::Status(404, stale))]);
    let gathered = run_parts(&t, &fake).await.expect("gathered");
    assert_each_part_once(&t, &gathered);
    assert_eq!(gathered.missing_count(), 0);
    assert_eq!(gathered.failures[0].node, node("g0-n0"));
    assert_eq!(gathered.failures[0].outcome, ReadOutcome::Stale);
    assert!(t.s.stale.is_stale(&node("g0-n0"), "books"));
    assert!(!t.s.stale.is_stale(&node("g0-n0"), "products"), "only the index it named");
    // Its pairs went to the other group.
    let g1 = GroupId::new("g1").unwrap();
    assert!(gathered.answers.iter().any(|(n, _, _)| t.s.topology.group_of(n) == Some(&g1)));
}

#[tokio::test]
async fn a_client_error_stops_a_multi_part_read_with_what_the_node_was_asked() {
    let t = two_indexes(1, 2, 1);
    let error = r#"{"message":"Inside `.queries[0]`: Attribute `x` is not filterable.","code":"invalid_search_filter"}"#;
    let fake = fake([("g0-n1", Behaviour::Status(400, error))]);
    let refused = run_parts(&t, &fake).await.expect_err("the client's error");
    assert_eq!(refused.node, node("g0-n1"));
    assert_eq!(refused.share.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![0, 1]);
    assert!(t.s.stale.answers().is_empty());
}

#[tokio::test]
async fn missing_shards_are_reported_per_part() {
    let t = two_indexes(1, 2, 1);
    let fake = fake([("g0-n0", Behaviour::Timeout)]);
    let gathered = run_parts(&t, &fake).await.expect("gathered");
    assert_each_part_once(&t, &gathered);
    let lost =
        |a: &Assignment| -> BTreeSet<ShardId> { a.shards_of(&node("g0-n0")).into_iter().collect() };
    assert_eq!(gathered.missing[0], lost(&t.s.assignment));
    assert_eq!(gathered.missing[1], lost(&t.books));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_node_times_out_and_its_pairs_fail_over_in_paused_time() {
    let t = two_indexes(1, 3, 2);
    let fake = fake([("g0-n2", Behaviour::Hang(Duration::from_secs(30)))]);
    let started = tokio::time::Instant::now();
    let gathered = run_parts(&t, &fake).await.expect("gathered");
    assert_each_part_once(&t, &gathered);
    assert_eq!(gathered.missing_count(), 0);
    assert_eq!(gathered.failures.len(), 1);
    assert!(matches!(gathered.failures[0].error, Some(NodeError::Timeout { .. })));
    // One node timeout, then the replacement round: no more.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(30) && elapsed < Duration::from_secs(31), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_node_is_hedged_and_the_replica_answers_first() {
    let s = setup(1, 2, 2);
    let policy = crate::replica_load::HedgePolicy {
        enabled: true,
        budget: 1.0,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(5),
    };
    let load = crate::replica_load::ReplicaLoad::new(false, policy);
    let view = ReadView::new(&s.health, &s.stale, "products").with_load(&load);
    // Enough answers for a hedge delay, and budget.
    let quick = fake([]);
    for rotation in 0..30 {
        let plan = ReadPlan::new(&s.topology, &s.assignment, &view, rotation, None);
        scatter(&quick, &plan, &s.assignment, &view, &request).await.expect("gathered");
    }
    let plan = ReadPlan::new(&s.topology, &s.assignment, &view, 0, None);
    let slow = plan.covering.nodes.keys().next().unwrap().clone();
    let fake = Fake {
        behaviour: [(slow.clone(), Behaviour::Hang(Duration::from_secs(60)))].into(),
        asked: Mutex::default(),
    };
    let started = tokio::time::Instant::now();
    let gathered = scatter(&fake, &plan, &s.assignment, &view, &request).await.expect("gathered");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_each_shard_once(&s, &gathered);
    assert!(gathered.answers.iter().all(|(n, _, _)| *n != slow));
    assert!(gathered.failures.is_empty(), "the hedge won: the slow node is no failure");
    assert!(load.hedges.sent.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

// Per-shard reads (documents browse): one request per shard.

async fn run_each(
    s: &Setup,
    fake: &Fake,
    wanted: &BTreeSet<ShardId>,
    pinned: &BTreeMap<ShardId, NodeId>,
) -> Result<Gathered, Refused> {
    let view = ReadView::new(&s.health, &s.stale, "products");
    let plan = ReadPlan::new(&s.topology, &s.assignment, &view, 0, None);
    let part = ReadPart { plan: &plan, assignment: &s.assignment, view };
    let one = |_: &NodeId, shard: ShardId| request(&node("x"), &[shard]);
    scatter_each_shard(fake, part, wanted, pinned, &one).await
}

fn all_shards() -> BTreeSet<ShardId> {
    (0..16).map(ShardId::new).collect()
}

#[tokio::test]
async fn each_shard_is_asked_on_its_own() {
    let s = setup(1, 3, 1);
    let fake = fake([]);
    let gathered = run_each(&s, &fake, &all_shards(), &BTreeMap::new()).await.expect("gathered");
    assert_each_shard_once(&s, &gathered);
    assert_eq!(gathered.answers.len(), 16);
    assert!(gathered.answers.iter().all(|(_, shards, _)| shards.len() == 1));
    assert_eq!(fake.asked.lock().unwrap().len(), 16);
}

#[tokio::test]
async fn a_pinned_shard_goes_to_its_node_and_fails_over_to_another_owner() {
    let s = setup(1, 3, 2);
    let shard = ShardId::new(5);
    let owners = s.assignment.owners(&GroupId::new("g0").unwrap(), shard).to_vec();
    let wanted = BTreeSet::from([shard]);
    let fake = fake([]);
    let pinned = BTreeMap::from([(shard, owners[1].clone())]);
    let gathered = run_each(&s, &fake, &wanted, &pinned).await.expect("gathered");
    assert_eq!(gathered.answers[0].0, owners[1], "the pinned node");
    assert_eq!(fake.asked.lock().unwrap().len(), 1);
    // The pinned node fails: the shard's other owner answers.
    let fake = Fake {
        behaviour: [(owners[1].clone(), Behaviour::Timeout)].into(),
        asked: Mutex::default(),
    };
    let gathered = run_each(&s, &fake, &wanted, &pinned).await.expect("gathered");
    assert_eq!(gathered.answers.len(), 1);
    assert_eq!(gathered.answers[0].0, owners[0]);
    assert_eq!(gathered.answers[0].1, vec![shard]);
    assert_eq!(gathered.failures.len(), 1);
}

#[tokio::test]
async fn per_shard_failover_reports_missing_and_stops_on_refusal() {
    let s = setup(1, 2, 1);
    let fake = fake([("g0-n0", Behaviour::Timeout)]);
    let gathered = run_each(&s, &fake, &all_shards(), &BTreeMap::new()).await.expect("gathered");
    let lost: BTreeSet<ShardId> = s.assignment.shards_of(&node("g0-n0")).into_iter().collect();
    assert_eq!(gathered.missing, lost);
    assert_each_shard_once(&s, &gathered);
    let error = r#"{"message":"Invalid value for `limit`.","code":"invalid_document_limit"}"#;
    let fake = self::fake([("g0-n1", Behaviour::Status(400, error))]);
    let refused =
        run_each(&s, &fake, &all_shards(), &BTreeMap::new()).await.expect_err("the client's");
    assert_eq!(refused.node, node("g0-n1"));
    assert_eq!(refused.share.len(), 1);
}

// Whole-group reads (stats).

async fn run_group(s: &Setup, fake: &Fake, index: Option<&str>) -> Result<WholeGroup, Refused> {
    let call = NodeRequest { method: Method::GET, path: "/stats".into(), body: None };
    scatter_group(fake, &s.topology, &s.health, &s.stale, index, &call).await
}

fn group_of(s: &Setup, answers: &[(NodeId, NodeResponse)]) -> BTreeSet<GroupId> {
    answers.iter().map(|(n, _)| s.topology.group_of(n).unwrap().clone()).collect()
}

#[tokio::test]
async fn a_whole_group_answers_and_a_failing_one_is_passed_over() {
    let s = setup(2, 2, 1);
    let gathered = run_group(&s, &fake([]), Some("products")).await.expect("gathered");
    let answers = gathered.answers.expect("a group");
    assert_eq!(answers.len(), 2);
    assert_eq!(group_of(&s, &answers), BTreeSet::from([GroupId::new("g0").unwrap()]));
    let fake = fake([("g0-n1", Behaviour::Timeout)]);
    let gathered = run_group(&s, &fake, Some("products")).await.expect("gathered");
    let answers = gathered.answers.expect("the other group");
    assert_eq!(group_of(&s, &answers), BTreeSet::from([GroupId::new("g1").unwrap()]));
    assert_eq!(gathered.failures.len(), 1);
}

#[tokio::test]
async fn stale_groups_are_not_asked_and_no_group_left_is_no_answer() {
    let s = setup(2, 2, 1);
    let stale = r#"{"message":"Index `products` not found.","code":"index_not_found"}"#;
    let fake = fake([("g1-n0", Behaviour::Status(404, stale)), ("g0-n0", Behaviour::Timeout)]);
    let gathered = run_group(&s, &fake, Some("products")).await.expect("gathered");
    assert!(gathered.answers.is_none());
    assert_eq!(gathered.failures.len(), 2);
    assert!(s.stale.is_stale(&node("g1-n0"), "products"));
    // g1 is now passed over without being asked; g0 answers once its node recovers.
    let fake = self::fake([]);
    let gathered = run_group(&s, &fake, Some("products")).await.expect("gathered");
    let answers = gathered.answers.expect("g0");
    assert_eq!(group_of(&s, &answers), BTreeSet::from([GroupId::new("g0").unwrap()]));
    assert!(fake.asked.lock().unwrap().iter().all(|(n, _)| n.as_str().starts_with("g0")));
    let error = r#"{"message":"bad","code":"bad_request"}"#;
    let fake = self::fake([("g0-n0", Behaviour::Status(400, error))]);
    assert!(run_group(&s, &fake, Some("products")).await.is_err(), "a client error stops");
}

// Reads in turn (get by id, a settings read): one node at a time until one decides.

fn nodes(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| node(n)).collect()
}

#[tokio::test]
async fn in_turn_passes_over_failed_and_stale_nodes_to_the_first_answer() {
    let s = setup(1, 3, 3);
    let view = ReadView::new(&s.health, &s.stale, "products");
    let stale = r#"{"message":"Index `products` not found.","code":"index_not_found"}"#;
    let fake = fake([("g0-n0", Behaviour::Timeout), ("g0-n1", Behaviour::Status(404, stale))]);
    let call = NodeRequest { method: Method::GET, path: "/doc".into(), body: None };
    let order = nodes(&["g0-n0", "g0-n1", "g0-n2"]);
    let read = in_turn(&fake, Some(&view), &order, &call, &|_| Turn::Take).await;
    assert_eq!(read.answer.as_ref().map(|(n, _)| n.as_str()), Some("g0-n2"));
    let failed: Vec<_> = read.failures.iter().map(|f| (f.node.as_str(), f.outcome)).collect();
    assert_eq!(failed, vec![("g0-n0", ReadOutcome::Failed), ("g0-n1", ReadOutcome::Stale)]);
    assert!(s.stale.is_stale(&node("g0-n1"), "products"));
    assert!(matches!(read.last_failed, Some(Err(NodeError::Timeout { .. }))));
}

#[tokio::test]
async fn in_turn_asks_every_node_an_undecided_answer_passes_and_stops_at_a_refusal() {
    let s = setup(1, 3, 3);
    let view = ReadView::new(&s.health, &s.stale, "products");
    let missing = r#"{"message":"Document `7` not found.","code":"document_not_found"}"#;
    let fake = fake([
        ("g0-n0", Behaviour::Status(404, missing)),
        ("g0-n1", Behaviour::Status(404, missing)),
        ("g0-n2", Behaviour::Timeout),
    ]);
    let call = NodeRequest { method: Method::GET, path: "/doc".into(), body: None };
    let judge = |r: &NodeResponse| if r.status == 404 { Turn::Pass } else { Turn::Take };
    let order = nodes(&["g0-n0", "g0-n1", "g0-n2"]);
    let read = in_turn(&fake, Some(&view), &order, &call, &judge).await;
    assert!(read.answer.is_none());
    assert_eq!(read.passed.len(), 2);
    assert_eq!(read.failures.len(), 1, "the owner that could not answer");
    assert!(s.stale.answers().is_empty(), "a missing document is not a stale node");
    // A client error is an answer: the next nodes are not asked.
    let bad = r#"{"message":"bad fields","code":"invalid_document_fields"}"#;
    let fake = self::fake([("g0-n0", Behaviour::Status(400, bad))]);
    let read = in_turn(&fake, Some(&view), &order, &call, &judge).await;
    assert_eq!(read.answer.map(|(_, r)| r.status), Some(400));
    assert_eq!(fake.asked.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn in_turn_marks_an_answer_judged_stale_and_without_a_view_judges_every_answer() {
    let s = setup(1, 2, 2);
    let view = ReadView::new(&s.health, &s.stale, "products");
    let call = NodeRequest { method: Method::GET, path: "/settings".into(), body: None };
    let order = nodes(&["g0-n0", "g0-n1"]);
    let read = in_turn(&fake([]), Some(&view), &order, &call, &|_| Turn::Stale).await;
    assert!(read.answer.is_none());
    assert_eq!(read.stale.len(), 2);
    assert!(s.stale.is_stale(&node("g0-n0"), "products"));
    let gone = r#"{"message":"Index `products` not found.","code":"index_not_found"}"#;
    let fake = fake([("g0-n0", Behaviour::Status(404, gone))]);
    let read = in_turn(&fake, None, &order, &call, &|_| Turn::Take).await;
    assert_eq!(read.answer.map(|(n, r)| (n, r.status)), Some((node("g0-n0"), 404)));
}
