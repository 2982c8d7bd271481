//! The elastic fleet through a real `miroir serve` over development nodes: a node added to a
//! group of three, then another drained and removed, while clients write and search. Every
//! search during the moves counts exactly the documents acknowledged (plus those in flight) and
//! never returns a hit twice; at the end every document is on exactly its owners. Then the same
//! with two instances on Redis, the leader killed in the middle of a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::{json_of, send, wait_for, wait_task, Gateway};
use instances::redis_url;
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;
mod instances;

const KEY: &str = "fleet-master-key";
const NODE_KEY: &str = "fleet-node-key";
const INDEX: &str = "products";
const INITIAL: u64 = 1200;
const BATCH: u64 = 40;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

fn nodes_yaml(nodes: &[TestNode], count: usize) -> String {
    let mut yaml = String::from("nodes:\n");
    for (i, node) in nodes.iter().take(count).enumerate() {
        yaml.push_str(&format!(
            "  - {{ id: n{i}, address: \"{}\", replica_group: g }}\n",
            node.url()
        ));
    }
    yaml
}

fn documents(ids: std::ops::Range<u64>) -> Value {
    Value::Array(
        ids.map(|id| json!({"id": id, "title": format!("item {id}"), "rank": id % 97})).collect(),
    )
}

/// Creates the index (totals exact up to 1,000,000) and loads `INITIAL` documents.
fn load(client: &reqwest::blocking::Client, base: &str) {
    let created = send(
        client,
        "POST",
        &format!("{base}/indexes"),
        KEY,
        Some(json!({"uid": INDEX, "primaryKey": "id"})),
    );
    wait_task(client, base, KEY, created);
    let settings = json!({"pagination": {"maxTotalHits": 1_000_000}});
    let patched =
        send(client, "PATCH", &format!("{base}/indexes/{INDEX}/settings"), KEY, Some(settings));
    wait_task(client, base, KEY, patched);
    let url = format!("{base}/indexes/{INDEX}/documents");
    for start in (0..INITIAL).step_by(400) {
        let answer = send(client, "POST", &url, KEY, Some(documents(start..start + 400)));
        wait_task(client, base, KEY, answer);
    }
}

/// What the clients saw while the fleet changed.
#[derive(Default)]
struct Load {
    /// Documents whose write task succeeded.
    acknowledged: AtomicU64,
    /// Documents sent (acknowledged or in flight).
    sent: AtomicU64,
    stop: AtomicBool,
    searches: AtomicU64,
    violations: Mutex<Vec<String>>,
}

/// Writes batches of new documents one after the other, each waited for.
fn write_load(base: String, load: Arc<Load>) {
    let client = client();
    let mut next = INITIAL;
    while !load.stop.load(Ordering::SeqCst) {
        load.sent.fetch_add(BATCH, Ordering::SeqCst);
        let answer = send(
            &client,
            "POST",
            &format!("{base}/indexes/{INDEX}/documents"),
            KEY,
            Some(documents(next..next + BATCH)),
        );
        wait_task(&client, &base, KEY, answer);
        load.acknowledged.fetch_add(BATCH, Ordering::SeqCst);
        next += BATCH;
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Searches continuously; records every answer whose total is outside [acknowledged before,
/// sent after] or that holds a hit twice.
fn search_load(base: String, load: Arc<Load>) {
    let client = client();
    let url = format!("{base}/indexes/{INDEX}/search");
    while !load.stop.load(Ordering::SeqCst) {
        let low = load.acknowledged.load(Ordering::SeqCst) + INITIAL;
        let answer = send(&client, "POST", &url, KEY, Some(json!({"q": "", "limit": 300})));
        let high = load.sent.load(Ordering::SeqCst) + INITIAL;
        load.searches.fetch_add(1, Ordering::SeqCst);
        let body = json_of(answer.clone());
        let total = body["estimatedTotalHits"].as_u64();
        let ids: Vec<u64> = body["hits"]
            .as_array()
            .map(|hits| hits.iter().filter_map(|h| h["id"].as_u64()).collect())
            .unwrap_or_default();
        let unique: BTreeSet<u64> = ids.iter().copied().collect();
        let fine = answer.0 == 200
            && total.is_some_and(|t| (low..=high).contains(&t))
            && unique.len() == ids.len()
            && ids.len() == 300;
        if !fine {
            load.violations.lock().unwrap().push(format!(
                "status {} total {total:?} not in {low}..={high}, {} hits, {} unique, degraded {:?}",
                answer.0,
                ids.len(),
                unique.len(),
                body.get("message")
            ));
        }
    }
}

/// Waits (at most 3 minutes) until run `run` finished; fails if it failed.
fn wait_run(client: &reqwest::blocking::Client, base: &str, run: u64) -> Value {
    let mut finished = Value::Null;
    wait_for(Duration::from_secs(180), &format!("rebalance run {run}"), || {
        let status =
            json_of(send(client, "GET", &format!("{base}/_miroir/rebalance/status"), KEY, None));
        let done = status["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["id"] == run).cloned());
        match done {
            Some(r) if status["current"].is_null() => {
                finished = r;
                true
            }
            _ => false,
        }
    });
    assert_eq!(finished["state"], "succeeded", "{finished}");
    finished
}

/// The owners of each shard of the index, from `/_miroir/shards`.
fn owners(client: &reqwest::blocking::Client, base: &str) -> BTreeMap<u64, BTreeSet<String>> {
    let shards =
        json_of(send(client, "GET", &format!("{base}/_miroir/shards?index={INDEX}"), KEY, None));
    shards[INDEX]["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            let owners = s["owners"]
                .as_object()
                .expect("owners")
                .values()
                .flat_map(|nodes| nodes.as_array().expect("nodes").iter())
                .map(|n| n.as_str().expect("id").to_owned())
                .collect();
            (s["shard"].as_u64().expect("shard"), owners)
        })
        .collect()
}

/// Every document on one node, read with the node key: id → shard.
fn on_node(client: &reqwest::blocking::Client, node: &TestNode) -> BTreeMap<u64, u64> {
    let url = format!("{}/indexes/{INDEX}/documents/fetch", node.url());
    let answer = send(client, "POST", &url, NODE_KEY, Some(json!({"limit": 1_000_000})));
    if answer.0 == 404 {
        return BTreeMap::new();
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    json_of(answer)["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|d| {
            let marker = d["_miroir_shard"].as_object().expect("bookkeeping");
            let shard = marker.keys().next().expect("shard key")[1..].parse().expect("shard");
            (d["id"].as_u64().expect("id"), shard)
        })
        .collect()
}

/// Every document 0..`count` is on every owner of its shard and on no other node.
fn assert_placed(
    client: &reqwest::blocking::Client,
    base: &str,
    nodes: &[(String, &TestNode)],
    count: u64,
) {
    let owners = owners(client, base);
    let mut seen: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut shard_of = BTreeMap::new();
    for (id, node) in nodes {
        for (doc, shard) in on_node(client, node) {
            assert!(
                owners[&shard].contains(id),
                "document {doc} (shard {shard}) is on {id}, which does not own it ({:?})",
                owners[&shard]
            );
            seen.entry(doc).or_default().insert(id.clone());
            shard_of.insert(doc, shard);
        }
    }
    assert_eq!(seen.len() as u64, count, "documents on the nodes");
    for (doc, holders) in &seen {
        assert_eq!(holders, &owners[&shard_of[doc]], "holders of document {doc}");
    }
}

#[test]
fn a_node_joins_and_another_leaves_under_load_without_a_wrong_answer() {
    let nodes: Vec<TestNode> = (0..4).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 16\nreplication_factor: 2\nrebalancer: {{ batch_size: 200 }}\n{}",
        nodes_yaml(&nodes, 3)
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let client = client();
    load(&client, &miroir.base);
    let created = send(
        &client,
        "POST",
        &format!("{}/keys", miroir.base),
        KEY,
        Some(json!({"actions": ["search"], "indexes": [INDEX], "expiresAt": null})),
    );
    assert_eq!(created.0, 201, "{}", created.1);
    let created = json_of(created);
    let search_key = created["key"].as_str().expect("key").to_owned();
    let key_uid = created["uid"].as_str().expect("uid").to_owned();

    let traffic = Arc::new(Load::default());
    let writer = std::thread::spawn({
        let (base, load) = (miroir.base.clone(), Arc::clone(&traffic));
        move || write_load(base, load)
    });
    let searcher = std::thread::spawn({
        let (base, load) = (miroir.base.clone(), Arc::clone(&traffic));
        move || search_load(base, load)
    });

    let added = send(
        &client,
        "POST",
        &format!("{}/_miroir/nodes", miroir.base),
        KEY,
        Some(json!({"id": "n3", "address": nodes[3].url(), "replicaGroup": "g"})),
    );
    assert_eq!(added.0, 202, "{}", added.1);
    let added = json_of(added);
    assert_eq!(added["state"], "joining");
    let run = wait_run(&client, &miroir.base, added["rebalanceRun"].as_u64().expect("a run"));
    // About 2/4 of the 16 shards' replicas go to the fourth node of an RF 2 group.
    let moved = run["shardsTotal"].as_u64().unwrap();
    assert!((3..=13).contains(&moved), "{run}");
    assert!(run["documentsCopied"].as_u64().unwrap() > 0, "{run}");

    let drained =
        send(&client, "POST", &format!("{}/_miroir/nodes/n1/drain", miroir.base), KEY, None);
    assert_eq!(drained.0, 202, "{}", drained.1);
    wait_run(&client, &miroir.base, json_of(drained)["rebalanceRun"].as_u64().expect("a run"));
    let removed = send(&client, "DELETE", &format!("{}/_miroir/nodes/n1", miroir.base), KEY, None);
    assert_eq!(removed.0, 200, "{}", removed.1);
    assert_eq!(json_of(removed)["state"], "removed");

    traffic.stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    searcher.join().expect("searcher");
    let violations = traffic.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} wrong answers: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    assert!(traffic.searches.load(Ordering::SeqCst) > 20, "too few searches to judge");

    let fleet = json_of(send(&client, "GET", &format!("{}/_miroir/nodes", miroir.base), KEY, None));
    let states: Vec<(String, String)> = fleet["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_owned(), n["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        states,
        [("n0", "active"), ("n1", "removed"), ("n2", "active"), ("n3", "active")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let count = INITIAL + traffic.acknowledged.load(Ordering::SeqCst);
    let named: Vec<(String, &TestNode)> =
        nodes.iter().enumerate().map(|(i, n)| (format!("n{i}"), n)).collect();
    assert_placed(&client, &miroir.base, &named, count);
    // A key created before the node joined works on it (searches reach n3).
    let searched = send(
        &client,
        "POST",
        &format!("{}/indexes/{INDEX}/search", miroir.base),
        &search_key,
        Some(json!({"q": "", "limit": 0})),
    );
    assert_eq!(searched.0, 200, "{}", searched.1);
    assert_eq!(json_of(searched)["estimatedTotalHits"], count, "with the search key");
    let on_n3 = send(&client, "GET", &format!("{}/keys/{key_uid}", nodes[3].url()), NODE_KEY, None);
    assert_eq!(on_n3.0, 200, "the new node holds the key: {}", on_n3.1);
    assert_eq!(json_of(on_n3)["key"], search_key.as_str());
    // The operations CLI shows the same fleet.
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_miroir"))
            .args(args)
            .args(["--url", &miroir.base, "--key", KEY])
            .output()
            .expect("run miroir");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let listed = cli(&["nodes", "list"]);
    assert!(listed.lines().any(|l| l.contains("n3") && l.contains("active")), "{listed}");
    assert!(listed.lines().any(|l| l.contains("n1") && l.contains("removed")), "{listed}");
    let status = cli(&["rebalance", "status"]);
    assert!(status.starts_with("no rebalance running"), "{status}");
    assert!(status.contains("run 2 (drain node n1): succeeded"), "{status}");
    // A removed id is never reused.
    let again = send(
        &client,
        "POST",
        &format!("{}/_miroir/nodes", miroir.base),
        KEY,
        Some(json!({"id": "n1", "address": nodes[1].url()})),
    );
    assert_eq!(again.0, 409, "{}", again.1);
    assert_eq!(json_of(again)["code"], "miroir_fleet_conflict");
}

#[test]
fn a_run_survives_its_leader_and_the_next_one_finishes_it() {
    let Some(redis) = redis_url() else { return };
    let nodes: Vec<TestNode> = (0..4).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("miroir-fleet-test-{}:", std::process::id());
    let start = |name: &str| {
        let (redis, prefix, nodes) = (redis.clone(), prefix.clone(), nodes_yaml(&nodes, 3));
        Gateway::start_whole(dir.path(), name, KEY, NODE_KEY, move |port| {
            format!(
                "server: {{ bind: 127.0.0.1, port: {port} }}\n\
                 task_store: {{ backend: redis, url: \"{redis}\", key_prefix: \"{prefix}\" }}\n\
                 replicas: 2\ninstance_id: {name}\nmetrics: {{ enabled: false }}\n\
                 leader: {{ lease_ttl: 2s, renew_interval: 500ms }}\n\
                 shards: 16\nreplication_factor: 2\n\
                 rebalancer: {{ batch_size: 10, max_concurrent_shards: 1 }}\n{nodes}"
            )
        })
    };
    let mut instances = vec![start("a"), start("b")];
    let client = client();
    load(&client, &instances[0].base);
    let leader_of = |g: &Gateway| {
        json_of(send(&client, "GET", &format!("{}/_miroir/leader", g.base), KEY, None))["is_leader"]
            == true
    };
    wait_for(Duration::from_secs(20), "a leader", || instances.iter().any(leader_of));
    let leader = instances.iter().position(leader_of).expect("a leader");
    let survivor = 1 - leader;

    let added = send(
        &client,
        "POST",
        &format!("{}/_miroir/nodes", instances[survivor].base),
        KEY,
        Some(json!({"id": "n3", "address": nodes[3].url(), "replicaGroup": "g"})),
    );
    assert_eq!(added.0, 202, "{}", added.1);
    let run = json_of(added)["rebalanceRun"].as_u64().expect("a run");
    // Kill the leader once it started copying: the run is open, and saved at some phase.
    let status_url = format!("{}/_miroir/rebalance/status", instances[survivor].base);
    wait_for(Duration::from_secs(60), "the copy to start", || {
        let current = json_of(send(&client, "GET", &status_url, KEY, None))["current"].clone();
        current["movesInProgress"]
            .as_array()
            .is_some_and(|moves| moves.iter().any(|m| m["phase"] != "pending"))
    });
    drop(instances.remove(leader));
    let survivor = &instances[0];
    let open = json_of(send(&client, "GET", &status_url, KEY, None))["current"].clone();
    assert_eq!(open["state"], "running", "the run must still be open when its leader dies");

    let traffic = Arc::new(Load::default());
    let searcher = std::thread::spawn({
        let (base, load) = (survivor.base.clone(), Arc::clone(&traffic));
        move || search_load(base, load)
    });
    let finished = wait_run(&client, &survivor.base, run);
    traffic.stop.store(true, Ordering::SeqCst);
    searcher.join().expect("searcher");
    let violations = traffic.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} wrong answers: {:?}",
        violations.len(),
        &violations[..violations.len().min(5)]
    );
    assert!(finished["documentsCopied"].as_u64().unwrap() > 0, "{finished}");
    assert!(leader_of(survivor), "the survivor leads");
    let named: Vec<(String, &TestNode)> =
        nodes.iter().enumerate().map(|(i, n)| (format!("n{i}"), n)).collect();
    assert_placed(&client, &survivor.base, &named, INITIAL);
}

#[test]
fn a_fleet_changed_at_runtime_survives_the_loss_of_the_task_store() {
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!("metrics: {{ enabled: false }}\nshards: 8\n{}", nodes_yaml(&nodes, 2));
    let client = client();
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    load(&client, &miroir.base);
    let added = send(
        &client,
        "POST",
        &format!("{}/_miroir/nodes", miroir.base),
        KEY,
        Some(json!({"id": "n2", "address": nodes[2].url(), "replicaGroup": "g"})),
    );
    assert_eq!(added.0, 202, "{}", added.1);
    wait_run(&client, &miroir.base, json_of(added)["rebalanceRun"].as_u64().expect("a run"));
    drop(miroir);
    std::fs::remove_file(dir.path().join("miroir.db")).expect("delete the task store");

    // The configuration still names two nodes; the copy kept on the nodes knows three.
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let fleet = json_of(send(&client, "GET", &format!("{}/_miroir/nodes", miroir.base), KEY, None));
    let states: Vec<&str> =
        fleet["nodes"].as_array().unwrap().iter().map(|n| n["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["active", "active", "active"], "{fleet}");
    let search = json_of(send(
        &client,
        "POST",
        &format!("{}/indexes/{INDEX}/search", miroir.base),
        KEY,
        Some(json!({"q": "", "limit": 0})),
    ));
    assert_eq!(search["estimatedTotalHits"], INITIAL, "{search}");
}

#[test]
fn a_paused_run_copies_nothing_until_resumed() {
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!("metrics: {{ enabled: false }}\nshards: 8\n{}", nodes_yaml(&nodes, 2));
    let client = client();
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    load(&client, &miroir.base);
    let url = |path: &str| format!("{}{path}", miroir.base);
    let idle = send(&client, "POST", &url("/_miroir/rebalance/pause"), KEY, None);
    assert_eq!(idle.0, 409, "{}", idle.1);
    let added = send(
        &client,
        "POST",
        &url("/_miroir/nodes"),
        KEY,
        Some(json!({"id": "n2", "address": nodes[2].url()})),
    );
    assert_eq!(added.0, 202, "{}", added.1);
    let added = json_of(added);
    assert_eq!(added["replicaGroup"], "g", "a node without a group joins the fleet's group");
    let paused = json_of(send(&client, "POST", &url("/_miroir/rebalance/pause"), KEY, None));
    assert_eq!(paused["state"], "paused", "{paused}");
    // A second change waits for the open run.
    let refused = send(&client, "POST", &url("/_miroir/nodes/n0/drain"), KEY, None);
    assert_eq!(refused.0, 409, "{}", refused.1);
    std::thread::sleep(Duration::from_secs(5));
    let status = json_of(send(&client, "GET", &url("/_miroir/rebalance/status"), KEY, None));
    assert_eq!(status["current"]["state"], "paused", "{status}");
    assert_eq!(status["current"]["shardsDone"], 0, "{status}");
    let resumed = json_of(send(&client, "POST", &url("/_miroir/rebalance/resume"), KEY, None));
    assert_eq!(resumed["state"], "running", "{resumed}");
    wait_run(&client, &miroir.base, added["rebalanceRun"].as_u64().expect("a run"));
    let named: Vec<(String, &TestNode)> =
        nodes.iter().enumerate().map(|(i, n)| (format!("n{i}"), n)).collect();
    assert_placed(&client, &miroir.base, &named, INITIAL);
}

#[test]
fn a_dead_node_removed_by_force_is_rebuilt_from_its_replicas() {
    let mut nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 8\nreplication_factor: 2\n\
         health: {{ interval: 200ms, timeout: 100ms, down_after: 2 }}\n{}",
        nodes_yaml(&nodes, 3)
    );
    let client = client();
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    load(&client, &miroir.base);
    drop(nodes.pop());
    let refused = send(&client, "DELETE", &format!("{}/_miroir/nodes/n2", miroir.base), KEY, None);
    assert_eq!(refused.0, 409, "an active node is removed only by force: {}", refused.1);
    let removed =
        send(&client, "DELETE", &format!("{}/_miroir/nodes/n2?force=true", miroir.base), KEY, None);
    assert_eq!(removed.0, 202, "{}", removed.1);
    let run = json_of(removed)["rebalanceRun"].as_u64().expect("a run");
    // Writes go on meanwhile, to the live owners only.
    let more = send(
        &client,
        "POST",
        &format!("{}/indexes/{INDEX}/documents", miroir.base),
        KEY,
        Some(documents(INITIAL..INITIAL + 100)),
    );
    wait_task(&client, &miroir.base, KEY, more);
    wait_run(&client, &miroir.base, run);
    let fleet = json_of(send(&client, "GET", &format!("{}/_miroir/nodes", miroir.base), KEY, None));
    assert_eq!(fleet["nodes"][2]["state"], "removed", "{fleet}");
    let named: Vec<(String, &TestNode)> =
        nodes.iter().enumerate().map(|(i, n)| (format!("n{i}"), n)).collect();
    assert_placed(&client, &miroir.base, &named, INITIAL + 100);
}
