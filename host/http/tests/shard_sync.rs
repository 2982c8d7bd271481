//! `sync_shard` with real development nodes: a target that misses documents, holds extra ones
//! and an older version of one is made equal to the source for one shard (other shards
//! untouched), and the same holds when clients add, update and delete documents through the
//! gateway during the sync. `sync_shards` does the same for several shards read together, and
//! `sync_from_sources` for shards of several sources read in the same page rounds.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{load_products, products, Cluster, ClusterBuilder, NODE_KEY};
use miroir_http::shard_sync::{sync_from_sources, sync_shard, sync_shards, wait_idle};
use miroir_types::ShardId;
use serde_json::{json, Value};

const SHARDS: u32 = 4;

/// Sends `method path` with a JSON body to node `index` directly; its status and body.
async fn node_send(
    cluster: &Cluster,
    index: usize,
    method: &str,
    path: &str,
    body: &Value,
) -> Value {
    let node = cluster.nodes[index].as_ref().expect("node running");
    let response = cluster
        .http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{path}", node.url()),
        )
        .bearer_auth(NODE_KEY)
        .json(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("node answers");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.expect("json")
}

async fn idle(cluster: &Cluster, index: usize) {
    let client = cluster.state.client(&cluster.node_ids[index]).expect("client");
    wait_idle(&client, "products").await.expect("node idle");
}

/// Every document of `shard` (or of every shard) on node `index`, by id, bookkeeping included.
async fn documents(cluster: &Cluster, index: usize, shard: Option<u32>) -> BTreeMap<String, Value> {
    idle(cluster, index).await;
    let mut body = json!({"limit": 100_000});
    if let Some(shard) = shard {
        body["filter"] = json!(format!("_miroir_shard.s{shard} EXISTS"));
    }
    let answer =
        node_send(cluster, index, "POST", "/indexes/products/documents/fetch", &body).await;
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|d| (d["id"].as_str().expect("id").to_owned(), d.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn target_missing_extra_and_older_documents_is_made_equal() {
    let cluster = ClusterBuilder::new(1, 2, 2).shards(SHARDS).start().await;
    load_products(&cluster, 400).await;
    let shard = 1;
    let source = documents(&cluster, 0, Some(shard)).await;
    assert!(source.len() > 50, "shard {shard} holds {} documents", source.len());
    assert_eq!(source, documents(&cluster, 1, Some(shard)).await);

    // The target misses ten documents, holds an older version of one, and two extra ones
    // (one of the shard, one of another shard that must stay).
    let ids: Vec<&String> = source.keys().collect();
    node_send(&cluster, 1, "POST", "/indexes/products/documents/delete-batch", &json!(ids[..10]))
        .await;
    let mut older = source[ids[20]].clone();
    older["price"] = json!(-1.0);
    let extra =
        json!({"id": "extra-1", "brand": "Nobody", "_miroir_shard": {format!("s{shard}"): null}});
    let other_shard = json!({"id": "extra-2", "brand": "Nobody", "_miroir_shard": {"s3": null}});
    node_send(
        &cluster,
        1,
        "POST",
        "/indexes/products/documents",
        &json!([older, extra, other_shard]),
    )
    .await;
    assert_ne!(source, documents(&cluster, 1, Some(shard)).await);

    let pages = std::sync::atomic::AtomicU64::new(0);
    let report = sync_node0_to_node1(&cluster, shard, &|copied| {
        pages.store(copied, std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    assert_eq!(documents(&cluster, 1, Some(shard)).await, source);
    assert_eq!(report.source_count, source.len() as u64);
    assert_eq!(report.target_count, source.len() as u64);
    assert_eq!(report.deleted, 1, "{report:?}");
    assert!(report.keys_compared, "the counts differed: {report:?}");
    assert!(report.copied >= source.len() as u64, "{report:?}");
    assert_eq!(pages.load(std::sync::atomic::Ordering::SeqCst), report.copied);
    assert!(
        documents(&cluster, 1, Some(3)).await.contains_key("extra-2"),
        "other shards untouched"
    );
    assert!(!documents(&cluster, 0, None).await.contains_key("extra-2"), "the source untouched");
}

/// Two nodes in one group (RF 2) copying pages of 10 documents.
async fn small_pages_cluster() -> Cluster {
    ClusterBuilder::new(1, 2, 2)
        .shards(SHARDS)
        .configure(|config| config.rebalancer.batch_size = 10)
        .start()
        .await
}

/// `sync_shard` of `shard` from node 0 to node 1.
async fn sync_node0_to_node1(
    cluster: &Cluster,
    shard: u32,
    on_page: &(dyn Fn(u64) + Send + Sync),
) -> miroir_http::shard_sync::SyncReport {
    let (source, target) = (&cluster.node_ids[0], &cluster.node_ids[1]);
    sync_shard(&cluster.state, "products", ShardId::new(shard), source, target, on_page)
        .await
        .expect("sync")
}

/// Node `index` lost shard `shard` entirely.
async fn lose_shard(cluster: &Cluster, index: usize, shard: u32) {
    let filter = json!({"filter": format!("_miroir_shard.s{shard} EXISTS")});
    node_send(cluster, index, "POST", "/indexes/products/documents/delete", &filter).await;
    assert!(documents(cluster, index, Some(shard)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_from_a_source_nothing_wrote_to_is_verified_by_counts() {
    let cluster = small_pages_cluster().await;
    load_products(&cluster, 400).await;
    let shard = 1;
    lose_shard(&cluster, 1, shard).await;
    let source = documents(&cluster, 0, Some(shard)).await;
    let report = sync_node0_to_node1(&cluster, shard, &|_| {}).await;
    assert_eq!(documents(&cluster, 1, Some(shard)).await, source);
    assert_eq!(
        (report.source_count, report.target_count),
        (source.len() as u64, source.len() as u64)
    );
    assert!(!report.keys_compared, "nothing was written during the copy: {report:?}");
}

/// A source changed between pages (its first document deleted, one added: the same count)
/// makes the pages miss a document while the target keeps the deleted one, with equal counts.
/// The verification sees the source's new tasks and compares keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_changed_during_the_copy_is_verified_by_keys_despite_equal_counts() {
    let cluster = small_pages_cluster().await;
    load_products(&cluster, 400).await;
    let shard = 2;
    lose_shard(&cluster, 1, shard).await;
    let first_page = node_send(
        &cluster,
        0,
        "POST",
        "/indexes/products/documents/fetch",
        &json!({"filter": format!("_miroir_shard.s{shard} EXISTS"), "limit": 1}),
    )
    .await;
    let first = first_page["results"][0]["id"].as_str().expect("an id").to_owned();
    assert!(first_page["total"].as_u64().expect("total") > 40, "{first_page}");
    let late =
        json!({"id": "late-1", "brand": "Late", "_miroir_shard": {format!("s{shard}"): null}});

    let changed = std::sync::atomic::AtomicBool::new(false);
    let change_source = |_: u64| {
        if changed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // After the first page: the next pages read the source at shifted offsets.
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let path = "/indexes/products/documents/delete-batch";
                node_send(&cluster, 0, "POST", path, &json!([first])).await;
                node_send(&cluster, 0, "POST", "/indexes/products/documents", &json!([late])).await;
                idle(&cluster, 0).await;
            })
        });
    };
    let report = sync_node0_to_node1(&cluster, shard, &change_source).await;
    assert!(changed.load(std::sync::atomic::Ordering::SeqCst));
    let source = documents(&cluster, 0, Some(shard)).await;
    assert!(source.contains_key("late-1") && !source.contains_key(&first));
    assert_eq!(documents(&cluster, 1, Some(shard)).await, source);
    assert!(report.keys_compared, "{report:?}");
    assert_eq!(report.deleted, 1, "the document deleted on the source mid-copy: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_shards_copied_together_end_equal_and_leave_the_others() {
    let cluster = ClusterBuilder::new(1, 2, 2)
        .shards(SHARDS)
        .configure(|config| config.rebalancer.batch_size = 7)
        .start()
        .await;
    load_products(&cluster, 400).await;
    let (copied, kept) = ([0, 2], 3);
    let before: Vec<_> = {
        let mut shards = Vec::new();
        for shard in copied {
            shards.push(documents(&cluster, 0, Some(shard)).await);
        }
        shards
    };
    // The target lost both shards entirely, holds an extra document of one, and one of a
    // shard outside the copy, which must stay.
    for shard in copied {
        node_send(
            &cluster,
            1,
            "POST",
            "/indexes/products/documents/delete",
            &json!({"filter": format!("_miroir_shard.s{shard} EXISTS")}),
        )
        .await;
    }
    let extra = json!({"id": "extra-0", "brand": "Nobody", "_miroir_shard": {"s0": null}});
    let other =
        json!({"id": "extra-3", "brand": "Nobody", "_miroir_shard": {format!("s{kept}"): null}});
    node_send(&cluster, 1, "POST", "/indexes/products/documents", &json!([extra, other])).await;
    let kept_before = documents(&cluster, 1, Some(kept)).await;

    let shards: Vec<ShardId> = copied.iter().map(|s| ShardId::new(*s)).collect();
    let report = sync_shards(
        &cluster.state,
        "products",
        &shards,
        &cluster.node_ids[0],
        &cluster.node_ids[1],
        &|_| {},
    )
    .await
    .expect("sync");
    for (shard, source) in copied.iter().zip(&before) {
        assert_eq!(&documents(&cluster, 1, Some(*shard)).await, source, "shard {shard}");
        assert_eq!(report.copied_by_shard.get(shard).copied(), Some(source.len() as u64));
    }
    let total: usize = before.iter().map(BTreeMap::len).sum();
    assert_eq!(report.copied, total as u64, "{report:?}");
    assert_eq!(report.source_count, total as u64);
    assert_eq!(report.deleted, 1, "the extra document of a copied shard: {report:?}");
    assert_eq!(documents(&cluster, 1, Some(kept)).await, kept_before, "other shards untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_of_two_sources_are_copied_in_the_same_rounds() {
    let cluster = ClusterBuilder::new(1, 3, 1)
        .shards(6)
        .configure(|config| config.rebalancer.batch_size = 9)
        .start()
        .await;
    load_products(&cluster, 400).await;
    // A shard held by node 0 and one held by node 1 (RF 1: one owner each).
    let mut held = [None, None];
    for shard in 0..6 {
        for (node, slot) in held.iter_mut().enumerate() {
            let docs = documents(&cluster, node, Some(shard)).await;
            if slot.is_none() && !docs.is_empty() {
                *slot = Some((shard, docs));
            }
        }
    }
    let [Some((a, a_docs)), Some((b, b_docs))] = held else { panic!("nodes 0 and 1 hold shards") };
    let own_before = documents(&cluster, 2, None).await;

    let sources = vec![
        (cluster.node_ids[0].clone(), vec![ShardId::new(a)]),
        (cluster.node_ids[1].clone(), vec![ShardId::new(b)]),
    ];
    let report =
        sync_from_sources(&cluster.state, "products", &sources, &cluster.node_ids[2], &|_| {})
            .await
            .expect("sync");
    assert_eq!(documents(&cluster, 2, Some(a)).await, a_docs, "shard {a} from node 0");
    assert_eq!(documents(&cluster, 2, Some(b)).await, b_docs, "shard {b} from node 1");
    assert_eq!(report.copied, (a_docs.len() + b_docs.len()) as u64, "{report:?}");
    let after = documents(&cluster, 2, None).await;
    assert!(own_before.iter().all(|(id, doc)| after.get(id) == Some(doc)), "its own shards kept");
    assert_eq!(after.len(), own_before.len() + a_docs.len() + b_docs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_under_concurrent_client_writes_ends_equal() {
    let cluster = small_pages_cluster().await;
    load_products(&cluster, 1000).await;
    let shard = 2;
    lose_shard(&cluster, 1, shard).await;

    let writer = {
        let url = cluster.url.clone();
        let http = cluster.http.clone();
        tokio::spawn(async move {
            let all = products();
            let mut acknowledged = 0;
            for round in 0..40usize {
                let (path, body) = match round % 3 {
                    0 => (
                        "/indexes/products/documents",
                        json!(all[1000 + round * 5..1005 + round * 5]),
                    ),
                    1 => (
                        "/indexes/products/documents",
                        json!((0..10)
                            .map(|i| json!({"id": all[round * 7 + i]["id"], "price": round as f64}))
                            .collect::<Vec<_>>()),
                    ),
                    _ => (
                        "/indexes/products/documents/delete-batch",
                        json!([all[round * 3]["id"], all[round * 3 + 1]["id"]]),
                    ),
                };
                let method =
                    if round % 3 == 1 { reqwest::Method::PUT } else { reqwest::Method::POST };
                let answer = http
                    .request(method, format!("{url}{path}"))
                    .json(&body)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .expect("miroir answers");
                assert_eq!(answer.status().as_u16(), 202, "{path}");
                acknowledged += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acknowledged
        })
    };
    let started = Instant::now();
    let report = sync_node0_to_node1(&cluster, shard, &|_| {}).await;
    assert_eq!(writer.await.expect("writer"), 40);
    assert!(started.elapsed() < Duration::from_secs(120));
    let source = documents(&cluster, 0, Some(shard)).await;
    let target = documents(&cluster, 1, Some(shard)).await;
    assert!(report.copied > 0 && !source.is_empty(), "{report:?}");
    for (id, document) in &source {
        assert_eq!(target.get(id), Some(document), "document {id}");
    }
    assert_eq!(source.len(), target.len(), "no extra document on the target");
    assert_eq!(documents(&cluster, 0, None).await, documents(&cluster, 1, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_provided_embeddings_are_copied() {
    let cluster = ClusterBuilder::new(1, 2, 2).shards(SHARDS).start().await;
    cluster.send_and_wait("POST", "/indexes", &json!({"uid": "vectors", "primaryKey": "id"})).await;
    let task = cluster
        .send_and_wait(
            "PATCH",
            "/indexes/vectors/settings",
            &json!({"embedders": {"default": {"source": "userProvided", "dimensions": 8}}}),
        )
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let path = common::shared_dir().join("datasets/vectors-400.json");
    let documents: Value =
        serde_json::from_slice(&std::fs::read(path).expect("dataset")).expect("json");
    let task = cluster.send_and_wait("POST", "/indexes/vectors/documents", &documents).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let shard = 1;
    let filter = json!({"filter": format!("_miroir_shard.s{shard} EXISTS")});
    node_send(&cluster, 1, "POST", "/indexes/vectors/documents/delete", &filter).await;
    sync_shard(
        &cluster.state,
        "vectors",
        ShardId::new(shard),
        &cluster.node_ids[0],
        &cluster.node_ids[1],
        &|_| {},
    )
    .await
    .expect("sync");
    let mut copies = Vec::new();
    for node in 0..2 {
        let client = cluster.state.client(&cluster.node_ids[node]).expect("client");
        wait_idle(&client, "vectors").await.expect("idle");
        let mut body = filter.clone();
        body["limit"] = json!(1000);
        body["retrieveVectors"] = json!(true);
        let answer =
            node_send(&cluster, node, "POST", "/indexes/vectors/documents/fetch", &body).await;
        let mut results = answer["results"].as_array().expect("results").clone();
        results.sort_by_key(|d| d["id"].to_string());
        copies.push(results);
    }
    assert!(!copies[0].is_empty());
    assert!(
        copies[0].iter().all(|d| d["_vectors"]["default"]["embeddings"].is_array()),
        "{:?}",
        copies[0][0]
    );
    assert_eq!(copies[0], copies[1]);
}
