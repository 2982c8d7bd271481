//! Writes the 2,000 products through Miroir in several formats and checks, document by document,
//! that each sits exactly on its owner nodes and nowhere else, that Miroir returns it without
//! bookkeeping, and that the tasks report one node's details.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{products, ClusterBuilder};
use futures_util::stream::{self, StreamExt};
use miroir_cluster::shard_of;
use serde_json::{json, Value};

const CSV_FIELDS: &[(&str, &str)] = &[
    ("id", "string"),
    ("title", "string"),
    ("brand", "string"),
    ("category", "string"),
    ("color", "string"),
    ("price", "number"),
    ("rating", "number"),
    ("reviews", "number"),
    ("year", "number"),
    ("in_stock", "boolean"),
];

fn to_csv(documents: &[Value]) -> (Vec<u8>, Vec<Value>) {
    let header: Vec<String> = CSV_FIELDS.iter().map(|(f, t)| format!("{f}:{t}")).collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).expect("header");
    let mut expected = Vec::new();
    for document in documents {
        let mut record = Vec::new();
        let mut flat = serde_json::Map::new();
        for (field, _) in CSV_FIELDS {
            let value = &document[*field];
            record.push(match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            flat.insert((*field).to_owned(), value.clone());
        }
        writer.write_record(&record).expect("record");
        expected.push(Value::Object(flat));
    }
    (writer.into_inner().expect("csv bytes"), expected)
}

async fn write_products_and_check(groups: usize, per_group: usize, rf: u32) {
    let cluster =
        ClusterBuilder::new(groups, per_group, rf).master_key("client-master").start().await;
    let task = cluster
        .send_and_wait("POST", "/indexes", &json!({"uid": "products", "primaryKey": "id"}))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");

    let all = products();
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    let mut tasks = Vec::new();
    for chunk in all[..800].chunks(400) {
        let answer = cluster
            .send_json("POST", "/indexes/products/documents", &Value::from(chunk.to_vec()))
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        assert!(answer.headers.get("x-miroir-degraded").is_none());
        tasks.push((answer.body["taskUid"].as_u64().expect("uid"), chunk.len()));
        chunk.iter().for_each(|d| {
            expected.insert(d["id"].as_str().expect("id").to_owned(), d.clone());
        });
    }
    for chunk in all[800..1400].chunks(300) {
        let mut ndjson = Vec::new();
        for document in chunk {
            ndjson.extend(serde_json::to_vec(document).expect("json"));
            ndjson.push(b'\n');
        }
        let answer = cluster
            .call("PUT", "/indexes/products/documents", Some(("application/x-ndjson", ndjson)), &[])
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        tasks.push((answer.body["taskUid"].as_u64().expect("uid"), chunk.len()));
        chunk.iter().for_each(|d| {
            expected.insert(d["id"].as_str().expect("id").to_owned(), d.clone());
        });
    }
    for chunk in all[1400..].chunks(300) {
        let (bytes, flat) = to_csv(chunk);
        let answer = cluster
            .call("POST", "/indexes/products/documents", Some(("text/csv", bytes)), &[])
            .await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        tasks.push((answer.body["taskUid"].as_u64().expect("uid"), chunk.len()));
        flat.into_iter().for_each(|d| {
            expected.insert(d["id"].as_str().expect("id").to_owned(), d);
        });
    }
    for (uid, count) in tasks {
        let task = cluster.wait_task(uid).await;
        assert_eq!(task["status"], "succeeded", "{task}");
        assert_eq!(task["type"], "documentAdditionOrUpdate");
        assert_eq!(
            task["details"],
            json!({"receivedDocuments": count, "indexedDocuments": count}),
            "{task}"
        );
    }

    // Placement: every node holds exactly the documents of the shards it owns.
    let assignment = cluster.state.assignment(64);
    let mut owners_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in expected.keys() {
        let shard = shard_of(id, 64);
        for (_, owners) in assignment.write_targets(shard) {
            for owner in owners {
                owners_of.entry(owner.to_string()).or_default().insert(id.clone());
            }
        }
    }
    for (index, node_id) in cluster.node_ids.iter().enumerate() {
        let (status, page) = cluster
            .node_get(index, "/indexes/products/documents?limit=100000&fields=id,_miroir_shard")
            .await;
        assert_eq!(status, 200, "{page}");
        let mut held = BTreeSet::new();
        for document in page["results"].as_array().expect("results") {
            let id = document["id"].as_str().expect("id").to_owned();
            // The shard is a field name holding null: never a searchable value.
            let marker = format!("s{}", shard_of(&id, 64).get());
            assert_eq!(document["_miroir_shard"], json!({ marker: null }), "{id} on {node_id}");
            held.insert(id);
        }
        let want = owners_of.remove(node_id.as_str()).unwrap_or_default();
        assert_eq!(
            held.len(),
            want.len(),
            "{node_id} holds {} documents, owns {}",
            held.len(),
            want.len()
        );
        assert!(held == want, "{node_id} holds documents it does not own, or misses some");
    }

    // Through Miroir, every document reads back exactly as written, without bookkeeping.
    let checks = stream::iter(expected.iter())
        .map(|(id, want)| {
            let cluster = &cluster;
            async move {
                let got = cluster.get(&format!("/indexes/products/documents/{id}")).await;
                assert_eq!(got.status, 200, "{id}: {:?}", got.body);
                assert_eq!(&got.body, want, "{id}");
            }
        })
        .buffer_unordered(32);
    checks.collect::<Vec<()>>().await;

    // The nodes keep the client's `*` (the shard marker is a field name holding null, never a
    // searchable value); the client reads back exactly what it wrote.
    let (_, node_settings) = cluster.node_get(0, "/indexes/products/settings").await;
    assert_eq!(node_settings["searchableAttributes"], json!(["*"]));
    assert_eq!(node_settings["filterableAttributes"], json!(["_miroir_shard"]));
    let client_settings = cluster.get("/indexes/products/settings").await;
    assert_eq!(client_settings.body["searchableAttributes"], json!(["*"]));
    assert_eq!(client_settings.body["filterableAttributes"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_holds_everything() {
    write_products_and_check(1, 1, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_one_group_rf1_place_each_document_on_its_owner_only() {
    write_products_and_check(1, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_one_group_rf2_place_each_document_on_both_owners() {
    write_products_and_check(1, 3, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_nodes_one_group_rf2() {
    write_products_and_check(1, 6, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_nodes_two_groups_rf1() {
    write_products_and_check(2, 3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_nodes_two_groups_rf2() {
    write_products_and_check(2, 3, 2).await;
}
