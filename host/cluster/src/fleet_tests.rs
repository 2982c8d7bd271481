use super::*;

fn n(id: &str) -> NodeId {
    NodeId::new(id).unwrap()
}
fn g(id: &str) -> GroupId {
    GroupId::new(id).unwrap()
}

fn fleet(nodes: &[(&str, &str)], rf: usize) -> Fleet {
    Fleet::seed(nodes.iter().map(|(id, group)| (n(id), format!("http://{id}"), g(group))), rf)
        .unwrap()
}

#[test]
fn a_joining_node_takes_about_its_share_and_nothing_else_moves() {
    let mut f = fleet(&[("a", "1"), ("b", "1"), ("c", "1")], 2);
    let before = f.assignment(&f.topology().unwrap(), 64);
    f.add_node(n("d"), "http://d".into(), g("1")).unwrap();
    let run = f.start_run("add d".into(), 64, "now".into()).expect("a run");
    let moves = &f.run.as_ref().unwrap().moves;
    assert_eq!(run, 1);
    // Each move hands one replica to d; d wins about RF/(N+1) = 2/4 of the replicas.
    assert!(moves.iter().all(|m| m.receivers() == vec![n("d")] && m.leavers().len() == 1));
    assert!((20..=44).contains(&moves.len()), "{} shards move", moves.len());
    // Until the copy is switched, reads ask the old owners and writes reach old and new.
    let during = f.assignment(&f.topology().unwrap(), 64);
    for s in 0..64 {
        let shard = ShardId::new(s);
        assert_eq!(during.owners(&g("1"), shard), before.owners(&g("1"), shard));
        let writes: Vec<NodeId> =
            during.write_targets(shard).flat_map(|(_, o)| o.to_vec()).collect();
        let moving = moves.iter().any(|m| m.shard == s);
        assert_eq!(writes.len(), if moving { 3 } else { 2 }, "shard {s}");
    }
    assert!(during.shards_of(&n("d")).is_empty());
}

#[test]
fn phases_switch_reads_then_stop_writes_to_the_old_owner() {
    let mut f = fleet(&[("a", "1"), ("b", "1")], 1);
    f.add_node(n("c"), "http://c".into(), g("1")).unwrap();
    f.start_run("add c".into(), 16, "now".into()).unwrap();
    let m = f.run.as_ref().unwrap().moves[0].clone();
    let shard = ShardId::new(m.shard);
    let phase = |f: &mut Fleet, p: MovePhase| {
        f.run.as_mut().unwrap().moves[0].phase = p;
        f.assignment(&f.topology().unwrap(), 16)
    };
    let copying = phase(&mut f, MovePhase::Copying);
    assert_eq!(copying.owners(&g("1"), shard), m.from.as_slice());
    let switched = phase(&mut f, MovePhase::Switched);
    assert_eq!(switched.owners(&g("1"), shard), &[n("c")]);
    assert_eq!(switched.write_targets(shard).next().unwrap().1.len(), 2);
    let cleaned = phase(&mut f, MovePhase::Cleaned);
    assert_eq!(cleaned.write_targets(shard).next().unwrap().1, &[n("c")]);
}

#[test]
fn a_drain_gives_every_shard_away_and_ends_drained_then_removed() {
    let mut f = fleet(&[("a", "1"), ("b", "1"), ("c", "1")], 2);
    f.drain_node(&n("b"), false).unwrap();
    f.start_run("drain b".into(), 32, "now".into()).unwrap();
    let run = f.run.clone().unwrap();
    assert!(run.moves.iter().all(|m| m.leavers() == vec![n("b")]));
    let held_by_b =
        Assignment::new(&fleet(&[("a", "1"), ("b", "1"), ("c", "1")], 2).topology().unwrap(), 32)
            .shards_of(&n("b"))
            .len();
    assert_eq!(run.moves.len(), held_by_b);
    assert_eq!(f.add_node(n("x"), "http://x".into(), g("1")), Err(FleetError::RunInProgress(1)));
    f.complete_change();
    f.run = None;
    assert_eq!(f.node(&n("b")).unwrap().state, NodeState::Drained);
    assert!(f.topology().unwrap().nodes().all(|id| id != &n("b")));
    assert!(!f.remove_node(&n("b"), false).unwrap());
    assert_eq!(f.node(&n("b")).unwrap().state, NodeState::Removed);
    assert_eq!(f.add_node(n("b"), "http://b".into(), g("1")), Err(FleetError::NodeExists(n("b"))));
}

#[test]
fn removals_are_checked() {
    let mut f = fleet(&[("a", "1"), ("b", "2")], 1);
    assert!(matches!(f.remove_node(&n("a"), false), Err(FleetError::WrongState { .. })));
    assert_eq!(f.drain_node(&n("a"), false), Err(FleetError::EmptyGroup(g("1"))));
    let mut single = fleet(&[("a", "1")], 1);
    assert_eq!(single.drain_node(&n("a"), false), Err(FleetError::NoNodeLeft));
    // A dead node is drained from its replicas and removed when the run ends.
    let mut f = fleet(&[("a", "1"), ("b", "1"), ("c", "1")], 2);
    assert!(f.remove_node(&n("c"), true).unwrap());
    assert!(!f.is_usable_source(&n("c")));
    f.start_run("remove c".into(), 8, "now".into());
    // Nothing is read from or written to the dead node meanwhile.
    let placed = f.assignment(&f.topology().unwrap(), 8);
    for s in 0..8 {
        let shard = ShardId::new(s);
        let writes: Vec<NodeId> =
            placed.write_targets(shard).flat_map(|(_, o)| o.to_vec()).collect();
        assert!(!writes.contains(&n("c")), "shard {s}");
        assert!(!placed.owners(&g("1"), shard).contains(&n("c")), "shard {s}");
    }
    f.complete_change();
    assert_eq!(f.node(&n("c")).unwrap().state, NodeState::Removed);
}

#[test]
fn a_new_group_is_filled_from_the_others_and_not_read_before() {
    let mut f = fleet(&[("a", "1")], 1);
    f.add_node(n("b"), "http://b".into(), g("2")).unwrap();
    f.start_run("add b".into(), 8, "now".into()).unwrap();
    let run = f.run.as_ref().unwrap();
    assert_eq!(run.moves.len(), 8);
    assert!(run.moves.iter().all(|m| m.from.is_empty() && m.to == vec![n("b")]));
    let a = f.assignment(&f.topology().unwrap(), 8);
    assert!(a.owners(&g("2"), ShardId::new(0)).is_empty());
    assert_eq!(a.write_targets(ShardId::new(0)).count(), 2);
}

#[test]
fn the_fleet_document_round_trips() {
    let mut f = fleet(&[("a", "1"), ("b", "1")], 1);
    f.add_node(n("c"), "http://c".into(), g("1")).unwrap();
    f.start_run("add c".into(), 4, "now".into());
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["nodes"][2]["state"], "joining");
    let back: Fleet = serde_json::from_value(json).unwrap();
    assert_eq!(back, f);
}
