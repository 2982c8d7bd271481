//! Replicas that missed writes are repaired, with real development nodes on 127.0.0.1: writes
//! go on with an owner down (`write_quorum: one`), the node that missed them gets a repair
//! record, and once it is back (even on an empty disk) the repair worker copies its shards back
//! from a fresh replica; afterwards every acknowledged document is on every owner of its shard
//! and every search counts the same. The leader's loop is run here by the test
//! ([`leader_loop`]), as the binary runs it on the leader.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{load_products, products, Cluster, ClusterBuilder, NODE_KEY};
use miroir_cluster::shard_of;
use miroir_http::AppState;
use serde_json::{json, Value};

const SHARDS: u32 = 64;

/// What the binary runs on the leader, every 100 ms instead of every second.
fn leader_loop(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            miroir_http::repair::refresh_status(&state).await;
            miroir_http::repair::repair_round(&state).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Waits (at most 90 s) until no repair record and no held replica is left.
async fn wait_repaired(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let records = miroir_http::repairs::pairs(&cluster.state).await.expect("store");
        let holds = miroir_http::convergence::shared_holds(&cluster.state).await.expect("store");
        if records.is_empty() && holds.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "never repaired: {records:?} {holds:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The documents node `index` holds by id (asked directly, with the node key), once it is idle.
async fn documents_on_node(cluster: &Cluster, index: usize) -> BTreeMap<String, Value> {
    let node = cluster.nodes[index].as_ref().expect("node running");
    let client = cluster.state.client(&cluster.node_ids[index]).expect("client");
    miroir_http::shard_sync::wait_idle(&client, "products").await.expect("idle");
    let response = cluster
        .http
        .post(format!("{}/indexes/products/documents/fetch", node.url()))
        .bearer_auth(NODE_KEY)
        .json(&json!({"limit": 1_000_000}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("node answers");
    assert!(response.status().is_success());
    let body: Value = response.json().await.expect("json");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|d| (d["id"].as_str().expect("id").to_owned(), d.clone()))
        .collect()
}

/// The ids node `index` holds.
async fn ids_on_node(cluster: &Cluster, index: usize) -> BTreeSet<String> {
    documents_on_node(cluster, index).await.into_keys().collect()
}

/// Every acknowledged document is on every owner of its shard, in every group, in the same
/// version.
async fn every_owner_holds_its_documents(cluster: &Cluster, acknowledged: &BTreeSet<String>) {
    let mut held = BTreeMap::new();
    for index in 0..cluster.nodes.len() {
        held.insert(cluster.node_ids[index].clone(), documents_on_node(cluster, index).await);
    }
    let assignment = cluster.state.assignment(SHARDS);
    for id in acknowledged {
        let mut versions = BTreeSet::new();
        for (_, owners) in assignment.write_targets(shard_of(id, SHARDS)) {
            for owner in owners {
                let document = held[owner].get(id);
                assert!(document.is_some(), "{id} missing on its owner {owner}");
                versions.insert(document.expect("checked").to_string());
            }
        }
        assert_eq!(versions.len(), 1, "{id}: owners hold different versions: {versions:?}");
    }
}

/// 50 identical searches count `expected` documents, without a degraded answer.
async fn searches_agree(cluster: &Cluster, expected: usize) {
    for attempt in 0..50 {
        let answer = cluster.send_json("POST", "/indexes/products/search", &json!({"q": ""})).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert!(answer.headers.get("x-miroir-degraded").is_none(), "attempt {attempt}");
        assert_eq!(answer.body["estimatedTotalHits"], expected, "search {attempt}");
    }
}

/// Writes batches of new products from `from` until `stop` (at most 300 batches); each must be
/// acknowledged. The ids acknowledged.
fn steady_writes(
    cluster: &Cluster,
    from: usize,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeSet<String>> {
    let url = cluster.url.clone();
    let http = cluster.http.clone();
    tokio::spawn(async move {
        let all = products();
        let mut acknowledged = BTreeSet::new();
        for (round, batch) in all[from..].chunks(5).take(300).enumerate() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if round % 3 == 2 {
                // An update of documents written before (a partial document, merged).
                let updates: Vec<Value> = all[round..round + 5]
                    .iter()
                    .map(|d| json!({"id": d["id"], "price": round as f64}))
                    .collect();
                let answer = http
                    .put(format!("{url}/indexes/products/documents"))
                    .json(&updates)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .expect("miroir answers");
                assert_eq!(answer.status().as_u16(), 202, "an update is acknowledged");
            }
            let answer = http
                .post(format!("{url}/indexes/products/documents"))
                .json(batch)
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .expect("miroir answers");
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 202, "a write with one owner down is acknowledged: {body}");
            acknowledged.extend(batch.iter().map(|d| d["id"].as_str().expect("id").to_owned()));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acknowledged
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf2_node_killed_under_writes_and_restarted_empty_is_repaired() {
    let mut cluster = ClusterBuilder::new(1, 3, 2).health_probes().start().await;
    let loaded = load_products(&cluster, 200).await;
    let key = cluster
        .send_json(
            "POST",
            "/keys",
            &serde_json::json!({"actions": ["search"], "indexes": ["*"], "expiresAt": null}),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.body);
    let key_uid = key.body["uid"].as_str().expect("uid").to_owned();
    let leader = leader_loop(cluster.state.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = steady_writes(&cluster, 200, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let addr = cluster.nodes[0].as_ref().expect("running").addr();
    cluster.stop_node_until_down(0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let down = cluster.node_ids[0].clone();
    assert!(
        miroir_http::repairs::get(&cluster.state, &down, "products")
            .await
            .expect("store")
            .is_some(),
        "the missed writes are recorded"
    );
    let topology = cluster.get("/_miroir/topology").await;
    let repairs = topology.body["repairs"].as_array().cloned().unwrap_or_default();
    assert!(
        repairs.iter().any(|r| r["node"] == down.as_str() && r["index"] == "products"),
        "the operator sees the repair: {}",
        topology.body
    );
    cluster.start_node_empty_at(0, addr);
    // Writes go on while the node is repaired.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let written = writer.await.expect("writer");
    assert!(written.len() > 50, "only {} documents written", written.len());
    wait_repaired(&cluster).await;
    leader.abort();

    let mut acknowledged: BTreeSet<String> =
        loaded.iter().map(|d| d["id"].as_str().expect("id").to_owned()).collect();
    acknowledged.extend(written);
    every_owner_holds_its_documents(&cluster, &acknowledged).await;
    searches_agree(&cluster, acknowledged.len()).await;
    // The clients' API keys came back with the data.
    let (status, body) = cluster.node_get(0, &format!("/keys/{key_uid}")).await;
    assert_eq!(status, 200, "the repaired node holds the API key again: {body}");
    let status = cluster.state.repair_status();
    assert!(status.documents_copied() > 0);
    miroir_http::repair::refresh_status(&cluster.state).await;
    assert!(status.pending().is_empty());
    assert_eq!(status.coverage(), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf1_node_restarted_empty_is_rebuilt_from_the_other_group() {
    let mut cluster = ClusterBuilder::new(2, 2, 1).health_probes().start().await;
    let loaded = load_products(&cluster, 300).await;
    let leader = leader_loop(cluster.state.clone());
    let addr = cluster.nodes[0].as_ref().expect("running").addr();
    cluster.stop_node_until_down(0).await;
    let more = products()[300..400].to_vec();
    let task = cluster
        .send_and_wait("POST", "/indexes/products/documents", &Value::from(more.clone()))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    cluster.start_node_empty_at(0, addr);
    wait_repaired(&cluster).await;
    leader.abort();

    let acknowledged: BTreeSet<String> =
        loaded.iter().chain(&more).map(|d| d["id"].as_str().expect("id").to_owned()).collect();
    every_owner_holds_its_documents(&cluster, &acknowledged).await;
    // Group g0 alone holds every document again.
    let g0: BTreeSet<String> =
        ids_on_node(&cluster, 0).await.union(&ids_on_node(&cluster, 1).await).cloned().collect();
    assert_eq!(g0, acknowledged);
    searches_agree(&cluster, acknowledged.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anti_entropy_finds_a_replica_that_lost_documents_silently() {
    let cluster = ClusterBuilder::new(1, 2, 2).health_probes().start().await;
    let loaded = load_products(&cluster, 200).await;
    // Node 1 loses documents behind Miroir's back.
    let node = cluster.nodes[1].as_ref().expect("running");
    let lost: Vec<&str> = loaded[..7].iter().map(|d| d["id"].as_str().expect("id")).collect();
    let response = cluster
        .http
        .post(format!("{}/indexes/products/documents/delete-batch", node.url()))
        .bearer_auth(NODE_KEY)
        .json(&lost)
        .send()
        .await
        .expect("node answers");
    assert!(response.status().is_success());
    let added = miroir_http::repair::anti_entropy(&cluster.state).await;
    assert!(added >= 1, "a record per differing shard: {added}");
    let records = miroir_http::repairs::pairs(&cluster.state).await.expect("store");
    assert_eq!(records, BTreeSet::from([(cluster.node_ids[1].clone(), "products".to_owned())]));
    let leader = leader_loop(cluster.state.clone());
    wait_repaired(&cluster).await;
    leader.abort();
    let acknowledged: BTreeSet<String> =
        loaded.iter().map(|d| d["id"].as_str().expect("id").to_owned()).collect();
    every_owner_holds_its_documents(&cluster, &acknowledged).await;
    assert_eq!(miroir_http::repair::anti_entropy(&cluster.state).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_settings_change_missed_by_a_node_reaches_it_when_repaired() {
    let mut cluster = ClusterBuilder::new(1, 3, 2).health_probes().start().await;
    let loaded = load_products(&cluster, 150).await;
    let addr = cluster.nodes[0].as_ref().expect("running").addr();
    cluster.stop_node_until_down(0).await;
    let task = cluster
        .send_and_wait(
            "PATCH",
            "/indexes/products/settings",
            &json!({"filterableAttributes": ["brand", "year"]}),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let record = miroir_http::repairs::get(&cluster.state, &cluster.node_ids[0], "products")
        .await
        .expect("store")
        .expect("a record for the missed settings change");
    assert!(record.settings, "{record:?}");
    cluster.start_node_empty_at(0, addr);
    let leader = leader_loop(cluster.state.clone());
    wait_repaired(&cluster).await;
    leader.abort();
    let (status, settings) = cluster.node_get(0, "/indexes/products/settings").await;
    assert_eq!(status, 200);
    let filterable: BTreeSet<&str> = settings["filterableAttributes"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(filterable.contains("year") && filterable.contains("_miroir_shard"), "{settings}");
    let acknowledged: BTreeSet<String> =
        loaded.iter().map(|d| d["id"].as_str().expect("id").to_owned()).collect();
    every_owner_holds_its_documents(&cluster, &acknowledged).await;
    let answer = cluster
        .send_json("POST", "/indexes/products/search", &json!({"q": "", "filter": "year EXISTS"}))
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_instance_reads_around_a_node_with_a_repair_record() {
    let mut cluster = ClusterBuilder::new(1, 3, 2).start().await;
    load_products(&cluster, 100).await;
    let (_, second, _server) = common::serve(&cluster.config, &cluster.store_dir).await;
    cluster.stop_node(0);
    let more = products()[100..200].to_vec();
    let task =
        cluster.send_and_wait("POST", "/indexes/products/documents", &Value::from(more)).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let down = cluster.node_ids[0].clone();
    assert!(cluster.state.stale().is_held(&down, "products"));
    assert!(!second.stale().is_held(&down, "products"));
    miroir_http::convergence::sync_holds(&second).await;
    assert!(second.stale().is_held(&down, "products"), "the record holds it on every instance");
}

/// Writes `document` (with its shard marker) straight to node `index`, as if only that owner
/// had taken a write, and waits for the node to apply it.
async fn write_to_one_node(cluster: &Cluster, index: usize, document: &Value) {
    let node = cluster.nodes[index].as_ref().expect("running");
    let shard = shard_of(document["id"].as_str().expect("id"), SHARDS);
    let mut document = document.clone();
    document[miroir_http::bookkeeping::SHARD_FIELD] = miroir_http::bookkeeping::shard_marker(shard);
    let response = cluster
        .http
        .post(format!("{}/indexes/products/documents", node.url()))
        .bearer_auth(NODE_KEY)
        .json(&Value::from(vec![document]))
        .send()
        .await
        .expect("node answers");
    assert!(response.status().is_success());
    let client = cluster.state.client(&cluster.node_ids[index]).expect("client");
    miroir_http::shard_sync::wait_idle(&client, "products").await.expect("idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_owners_that_each_missed_a_write_to_one_shard_end_with_both_writes() {
    let cluster = ClusterBuilder::new(1, 2, 2).health_probes().start().await;
    let loaded = load_products(&cluster, 100).await;
    // Two new documents of one shard: each owner took one and missed the other, so neither
    // holds every write of the shard and there is no fresh copy to mirror.
    let extra = products()[100..].to_vec();
    let first = &extra[0];
    let shard = shard_of(first["id"].as_str().expect("id"), SHARDS);
    let second = extra[1..]
        .iter()
        .find(|d| shard_of(d["id"].as_str().expect("id"), SHARDS) == shard)
        .expect("another document of the shard");
    write_to_one_node(&cluster, 0, first).await;
    write_to_one_node(&cluster, 1, second).await;
    {
        let _guard = cluster.state.index_write_guard("products").await.expect("guard");
        for (missed_by, _) in [(1, first), (0, second)] {
            let node = &cluster.node_ids[missed_by];
            miroir_http::repairs::add(&cluster.state, node, "products", [shard], false)
                .await
                .expect("store");
        }
    }
    let leader = leader_loop(cluster.state.clone());
    wait_repaired(&cluster).await;
    leader.abort();

    let acknowledged: BTreeSet<String> = loaded
        .iter()
        .chain([first, second])
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    every_owner_holds_its_documents(&cluster, &acknowledged).await;
    assert_eq!(ids_on_node(&cluster, 0).await, acknowledged);
    assert_eq!(ids_on_node(&cluster, 1).await, acknowledged);
    searches_agree(&cluster, acknowledged.len()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shard_every_replica_lost_is_taken_as_it_is_instead_of_read_around_for_ever() {
    let mut cluster = ClusterBuilder::new(1, 2, 2).health_probes().start().await;
    load_products(&cluster, 100).await;
    // Both replicas of every shard lose their disks: the first 100 documents are gone.
    let addrs: Vec<_> =
        (0..2).map(|i| cluster.nodes[i].as_ref().expect("running").addr()).collect();
    for (i, addr) in addrs.into_iter().enumerate() {
        cluster.stop_node(i);
        cluster.start_node_empty_at(i, addr);
    }
    let more = products()[100..150].to_vec();
    let task = cluster
        .send_and_wait("POST", "/indexes/products/documents", &Value::from(more.clone()))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let holds = miroir_http::convergence::shared_holds(&cluster.state).await.expect("store");
    assert_eq!(holds.len(), 2, "both replicas are held: {holds:?}");
    let leader = leader_loop(cluster.state.clone());
    wait_repaired(&cluster).await;
    leader.abort();

    assert!(cluster.state.repair_status().shards_lost() > 0);
    let acknowledged: BTreeSet<String> =
        more.iter().map(|d| d["id"].as_str().expect("id").to_owned()).collect();
    every_owner_holds_its_documents(&cluster, &acknowledged).await;
    searches_agree(&cluster, acknowledged.len()).await;
}
