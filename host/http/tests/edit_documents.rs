//! `POST /indexes/{uid}/documents/edit` (experimental feature `editDocumentsByFunction`) through
//! Miroir over three development nodes (every shard on two of them), compared with one
//! development node holding every document: a filtered edit with a context, a function that
//! replaces the whole document, deletions by `doc = ()`, a changed primary key, and the refusal
//! while the feature is off. Afterwards the bookkeeping is intact: filtered searches, document
//! reads, a shard copy between replicas (the shard-restricted read repairs and rebalances make)
//! and every document on the nodes carrying its own shard.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{ClusterBuilder, NODE_KEY};
use miroir_cluster::shard_of;
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const KEY: &str = "edit-master-key";
const SHARDS: u32 = 8;

struct Pair {
    miroir: common::Cluster,
    node: TestNode,
    http: reqwest::Client,
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    (method, path, body): (&str, &str, Option<Value>),
) -> (u16, Value) {
    common::call_json(http, base, key, method, path, body).await
}

impl Pair {
    async fn start() -> Pair {
        let miroir = ClusterBuilder::new(1, 3, 2).shards(SHARDS).master_key(KEY).start().await;
        let node = tokio::task::spawn_blocking(|| TestNode::start(Some(KEY))).await.expect("node");
        Pair { miroir, node, http: reqwest::Client::new() }
    }

    async fn both(&self, method: &str, path: &str, body: Option<Value>) -> [(u16, Value); 2] {
        let miroir = call(&self.http, &self.miroir.url, KEY, (method, path, body.clone())).await;
        let node = call(&self.http, &self.node.url(), KEY, (method, path, body)).await;
        [miroir, node]
    }

    /// Sends to both, waits for both tasks and returns them (Miroir's first).
    async fn write(&self, method: &str, path: &str, body: Value) -> [Value; 2] {
        let [miroir, node] = self.both(method, path, Some(body)).await;
        assert_eq!(miroir.0, 202, "{path}: {}", miroir.1);
        assert_eq!(node.0, 202, "{path}: {}", node.1);
        assert_eq!(miroir.1["type"], node.1["type"], "{path}");
        let miroir = self.wait(&self.miroir.url, miroir.1["taskUid"].as_u64().unwrap()).await;
        let node = self.wait(&self.node.url(), node.1["taskUid"].as_u64().unwrap()).await;
        [miroir, node]
    }

    /// An edit on both: the tasks agree on type, status, details and error code.
    async fn edit(&self, body: Value) -> Value {
        let [miroir, node] = self.write("POST", "/indexes/books/documents/edit", body).await;
        assert_eq!(miroir["type"], "documentEdition", "{miroir}");
        for field in ["type", "status", "details", "indexUid"] {
            assert_eq!(miroir[field], node[field], "{field}: Miroir {miroir} one node {node}");
        }
        assert_eq!(miroir["error"]["code"], node["error"]["code"], "{miroir} {node}");
        miroir
    }

    async fn wait(&self, base: &str, uid: u64) -> Value {
        for _ in 0..1000 {
            let (_, task) =
                call(&self.http, base, KEY, ("GET", &format!("/tasks/{uid}"), None)).await;
            if matches!(task["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {uid} on {base} did not finish");
    }

    /// Every document, by id, from Miroir and from the one node.
    async fn documents(&self) -> [BTreeMap<String, Value>; 2] {
        let [(ms, miroir), (ns, node)] =
            self.both("GET", "/indexes/books/documents?limit=1000", None).await;
        assert_eq!((ms, ns), (200, 200));
        let by_id = |answer: &Value| {
            answer["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|d| (d["id"].to_string(), d.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        [by_id(&miroir), by_id(&node)]
    }

    async fn same_documents(&self) -> BTreeMap<String, Value> {
        let [miroir, node] = self.documents().await;
        assert_eq!(miroir, node, "Miroir (left) and one node (right) hold different documents");
        assert!(miroir.values().all(|d| d.get("_miroir_shard").is_none()), "{miroir:?}");
        miroir
    }

    /// Every document on every node carries the marker of its own shard, and is on both owners.
    async fn bookkeeping_intact(&self) {
        let mut copies: BTreeMap<String, usize> = BTreeMap::new();
        for index in 0..3 {
            let node = self.miroir.nodes[index].as_ref().expect("node").url();
            let (status, answer) = call(
                &self.http,
                &node,
                NODE_KEY,
                ("GET", "/indexes/books/documents?limit=1000", None),
            )
            .await;
            assert_eq!(status, 200, "{answer}");
            for doc in answer["results"].as_array().expect("results") {
                let id = doc["id"].to_string();
                let shard = shard_of(&id, SHARDS).get();
                assert_eq!(doc["_miroir_shard"], json!({format!("s{shard}"): null}), "{doc}");
                *copies.entry(id).or_default() += 1;
            }
        }
        assert!(copies.values().all(|n| *n == 2), "every document on both owners: {copies:?}");
    }
}

/// The uid of the one node's latest task.
async fn task_uid_on_node(pair: &Pair) -> u64 {
    let (_, tasks) = call(&pair.http, &pair.node.url(), KEY, ("GET", "/tasks?limit=1", None)).await;
    tasks["results"][0]["uid"].as_u64().expect("a task")
}

fn books() -> Value {
    let genres = ["fantasy", "crime", "poetry"];
    Value::from(
        (1..=30)
            .map(|i| {
                json!({"id": i, "title": format!("book {i}"), "genre": genres[i % 3],
                       "year": 1980 + i})
            })
            .collect::<Vec<_>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_by_function_answer_as_one_node_and_keep_the_bookkeeping() {
    let pair = Pair::start().await;
    pair.write("POST", "/indexes", json!({"uid": "books", "primaryKey": "id"})).await;
    let settings = json!({"filterableAttributes": ["genre", "year"]});
    pair.write("PATCH", "/indexes/books/settings", settings).await;
    pair.write("POST", "/indexes/books/documents", books()).await;
    let upper = json!({"function": "doc.title = doc.title.to_upper() + context.mark",
                       "filter": "genre = fantasy", "context": {"mark": "!"}});

    // The feature is off: one node's refusal, on a known index and an unknown one.
    for path in ["/indexes/books/documents/edit", "/indexes/nope/documents/edit"] {
        let [miroir, node] = pair.both("POST", path, Some(upper.clone())).await;
        assert_eq!(miroir, node, "{path}");
        assert_eq!(miroir.1["code"], "feature_not_enabled", "{path}");
    }
    let on = json!({"editDocumentsByFunction": true});
    let [miroir, node] = pair.both("PATCH", "/experimental-features", Some(on)).await;
    assert_eq!((miroir.0, node.0), (200, 200), "{miroir:?}");

    // A filter and a context: the fantasy titles uppercased, counted once despite replicas.
    let task = pair.edit(upper).await;
    assert_eq!(task["details"]["editedDocuments"], 10, "{task}");
    assert_eq!(task["details"]["function"], "doc.title = doc.title.to_upper() + context.mark");
    let docs = pair.same_documents().await;
    assert_eq!(docs["3"]["title"], "BOOK 3!");
    pair.bookkeeping_intact().await;

    // The whole document replaced: the bookkeeping comes back.
    let replace = json!({"function": "doc = #{id: doc.id, title: `new ${doc.id}`, genre: doc.genre, year: doc.year, n: 1}",
                         "filter": ["year < 2000"]});
    let task = pair.edit(replace).await;
    assert_eq!(task["details"]["editedDocuments"], 19, "{task}");
    let docs = pair.same_documents().await;
    assert_eq!(
        docs["3"],
        json!({"id": 3, "title": "new 3", "genre": "fantasy", "year": 1983, "n": 1})
    );
    pair.bookkeeping_intact().await;
    // A function writing the bookkeeping field itself changes nothing of it.
    let task = pair
        .edit(json!({"function": "doc._miroir_shard = 5; doc.touched = true", "filter": "year = 1984"}))
        .await;
    assert_eq!(task["status"], "succeeded", "{task}");
    pair.bookkeeping_intact().await;
    let [(_, miroir), (_, _)] = pair.both("GET", "/indexes/books/documents/4", None).await;
    assert_eq!(miroir["touched"], true);
    assert!(miroir.get("_miroir_shard").is_none(), "{miroir}");
    pair.edit(json!({"function": "doc.remove(\"_miroir_shard\"); doc.remove(\"touched\")",
                     "filter": "year = 1984"}))
        .await;
    pair.bookkeeping_intact().await;
    let docs = pair.same_documents().await;

    // Reads after the edits: a filtered search, a document, and a shard copied between the
    // two owners by its shard filter.
    for body in
        [json!({"filter": "genre = fantasy", "limit": 100}), json!({"q": "new", "limit": 100})]
    {
        let [(ms, miroir), (ns, node)] =
            pair.both("POST", "/indexes/books/search", Some(body.clone())).await;
        assert_eq!((ms, ns), (200, 200), "{miroir}");
        let ids = |answer: &Value| {
            let mut ids: Vec<String> = answer["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .inspect(|h| assert!(h.get("_miroir_shard").is_none(), "{h}"))
                .map(|h| h["id"].to_string())
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&miroir), ids(&node), "{body}");
        assert_eq!(miroir["estimatedTotalHits"], node["estimatedTotalHits"], "{body}");
    }
    let [one, other] = pair.both("GET", "/indexes/books/documents/7", None).await;
    assert_eq!(one, other);
    let shard = shard_of("7", SHARDS);
    let state = &pair.miroir.state;
    let owners: Vec<_> = state
        .assignment(SHARDS)
        .write_targets(shard)
        .flat_map(|(_, owners)| owners.to_vec())
        .collect();
    assert_eq!(owners.len(), 2, "{owners:?}");
    let report =
        miroir_http::shard_sync::sync_shard(state, "books", shard, &owners[0], &owners[1], &|_| {})
            .await
            .expect("shard copied");
    let in_shard = docs.keys().filter(|id| shard_of(id, SHARDS) == shard).count() as u64;
    assert_eq!((report.source_count, report.target_count), (in_shard, in_shard), "{report:?}");

    // Deletions by `doc = ()`, counted once.
    let task = pair.edit(json!({"function": "if doc.year > 2005 { doc = () }"})).await;
    assert_eq!(task["details"]["deletedDocuments"], 5, "{task}");
    assert_eq!(task["details"]["editedDocuments"], 0, "{task}");
    assert_eq!(pair.same_documents().await.len(), 25);
    pair.bookkeeping_intact().await;

    // A changed primary key fails the task on every node, and nothing changes.
    let task =
        pair.edit(json!({"function": "doc.id = doc.id + 100", "filter": "year = 1981"})).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(pair.same_documents().await.len(), 25);
    // A filter on the bookkeeping field fails as on one node, where it is not filterable.
    let task =
        pair.edit(json!({"function": "doc = ()", "filter": "_miroir_shard.s1 EXISTS"})).await;
    assert_eq!(task["status"], "failed", "{task}");
    let node = pair.wait(&pair.node.url(), task_uid_on_node(&pair).await).await;
    assert_eq!(task["error"], node["error"], "the node's error as one node words it");
    assert_eq!(pair.same_documents().await.len(), 25);
    pair.bookkeeping_intact().await;
}
