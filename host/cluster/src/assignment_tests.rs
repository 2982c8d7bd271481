use std::collections::BTreeMap;

use miroir_types::{GroupId, NodeId, ShardId};
use proptest::prelude::*;

use super::*;
use crate::topology::Topology;

fn nodes(n: usize) -> Vec<NodeId> {
    (0..n).map(|i| NodeId::new(format!("node-{i}")).unwrap()).collect()
}

fn one_group(nodes: &[NodeId], rf: usize) -> Topology {
    let g = GroupId::new("g").unwrap();
    Topology::new(nodes.iter().map(|n| (n.clone(), g.clone())), rf).unwrap()
}

#[test]
fn shard_of_is_xxh64_seed_zero_modulo_s() {
    assert_eq!(shard_of("p0000042", 64).get() as u64, xxh64(b"p0000042", 0) % 64);
    assert_eq!(shard_of("42", 1), ShardId::new(0));
}

#[test]
fn every_node_gets_its_share_within_a_few_percent() {
    // Rendezvous hashing balances statistically: with S = 1024 each node's share of the shards
    // stays within 4 percentage points of 1/Ng for groups of 2 to 10 nodes (measured: at most
    // 3.5 points, for 4 nodes), and within four binomial standard deviations of the mean.
    for group_size in 2..=10 {
        let ns = nodes(group_size);
        let a = Assignment::new(&one_group(&ns, 1), 1024);
        let p = 1.0 / group_size as f64;
        let expected = 1024.0 * p;
        let four_sigma = 4.0 * (1024.0 * p * (1.0 - p)).sqrt();
        for n in &ns {
            let count = a.shards_of(n).len() as f64;
            let share = count / 1024.0;
            assert!(
                (share - p).abs() <= 0.04,
                "{n} holds {:.1}% of the shards, 1/Ng is {:.1}% (group of {group_size})",
                share * 100.0,
                p * 100.0
            );
            assert!((count - expected).abs() < four_sigma, "{n}: {count} vs {expected}");
        }
    }
}

#[test]
fn adding_a_node_moves_only_the_shards_it_wins() {
    let before_nodes = nodes(5);
    let mut after_nodes = before_nodes.clone();
    after_nodes.push(NodeId::new("node-new").unwrap());
    let g = GroupId::new("g").unwrap();
    for rf in [1, 2] {
        let before = Assignment::new(&one_group(&before_nodes, rf), 1024);
        let after = Assignment::new(&one_group(&after_nodes, rf), 1024);
        let mut moved = 0;
        for s in 0..1024 {
            let (b, a) = (before.owners(&g, ShardId::new(s)), after.owners(&g, ShardId::new(s)));
            if b != a {
                moved += 1;
                // Whatever changed, the new node is among the new owners.
                assert!(a.contains(after_nodes.last().unwrap()), "shard {s}: {b:?} -> {a:?}");
            }
        }
        let expected = 1024.0 * rf as f64 / 6.0;
        assert!(
            (moved as f64 - expected).abs() / expected < 0.2,
            "rf {rf}: {moved} shards moved, expected about {expected}"
        );
    }
}

#[test]
fn removing_a_node_moves_only_its_shards() {
    let all = nodes(6);
    let fewer: Vec<NodeId> = all[..5].to_vec();
    let g = GroupId::new("g").unwrap();
    let before = Assignment::new(&one_group(&all, 1), 1024);
    let after = Assignment::new(&one_group(&fewer, 1), 1024);
    for s in 0..1024 {
        let shard = ShardId::new(s);
        if before.owners(&g, shard) != after.owners(&g, shard) {
            assert_eq!(before.owners(&g, shard), &all[5..], "shard {s} moved without reason");
        }
    }
}

#[test]
fn groups_are_independent() {
    let g1 = GroupId::new("g1").unwrap();
    let g2 = GroupId::new("g2").unwrap();
    let a_nodes = nodes(3);
    let b_nodes: Vec<NodeId> = (0..4).map(|i| NodeId::new(format!("b-{i}")).unwrap()).collect();
    let topo = |extra: bool| {
        let mut pairs: Vec<(NodeId, GroupId)> =
            a_nodes.iter().map(|n| (n.clone(), g1.clone())).collect();
        pairs.extend(b_nodes.iter().map(|n| (n.clone(), g2.clone())));
        if extra {
            pairs.push((NodeId::new("b-extra").unwrap(), g2.clone()));
        }
        Topology::new(pairs, 1).unwrap()
    };
    let before = Assignment::new(&topo(false), 256);
    let after = Assignment::new(&topo(true), 256);
    for s in 0..256 {
        assert_eq!(before.owners(&g1, ShardId::new(s)), after.owners(&g1, ShardId::new(s)));
    }
    let targets: BTreeMap<_, _> = after.write_targets(ShardId::new(7)).collect();
    assert_eq!(targets.len(), 2, "a write goes to every group");
}

proptest! {
    #[test]
    fn assignment_is_deterministic_and_has_rf_distinct_owners(
        size in 1usize..8, rf_pick in 0usize..8, shards in 1u32..200
    ) {
        let rf = 1 + rf_pick % size;
        let ns = nodes(size);
        let g = GroupId::new("g").unwrap();
        let a = Assignment::new(&one_group(&ns, rf), shards);
        let b = Assignment::new(&one_group(&ns, rf), shards);
        for s in 0..shards {
            let owners = a.owners(&g, ShardId::new(s));
            prop_assert_eq!(owners, b.owners(&g, ShardId::new(s)));
            prop_assert_eq!(owners.len(), rf);
            let mut dedup = owners.to_vec();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), rf);
        }
    }

    #[test]
    fn shard_of_is_stable_and_in_range(key in "[a-zA-Z0-9_-]{1,40}", shards in 1u32..5000) {
        let s = shard_of(&key, shards);
        prop_assert!(s.get() < shards);
        prop_assert_eq!(s, shard_of(&key, shards));
    }
}
