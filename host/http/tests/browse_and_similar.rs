//! Document browsing and `similar` over several nodes answer like one node holding everything.
//!
//! Browsing pages one global offset/limit in shard-major order (one node's internal order is not
//! reproducible across shards; `docs/architecture.md`), so pages are compared with one node as
//! sets, and the tests prove what holds whatever the order: consecutive pages cover every
//! document exactly once, `total` counts each document once (never once per replica), the same
//! page is the same whichever replicas answer, and bookkeeping never shows. `similar` is
//! compared with one node exactly (every field but `processingTimeMs`).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{products, shared_dir, Cluster, ClusterBuilder};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const KEY: &str = "browse-similar-key";

/// One development node holding every document: the reference.
struct Single {
    node: TestNode,
    http: reqwest::Client,
}

impl Single {
    fn start() -> Self {
        Single { node: TestNode::start(Some(KEY)), http: reqwest::Client::new() }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.node.url()))
            .bearer_auth(KEY)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the node answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn send_and_wait(&self, method: &str, path: &str, body: &Value) {
        let (status, answer) = self.call(method, path, Some(body)).await;
        assert_eq!(status, 202, "{path}: {answer}");
        let uid = answer["taskUid"].as_u64().expect("taskUid");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, task) = self.call("GET", &format!("/tasks/{uid}"), None).await;
            match task["status"].as_str() {
                Some("succeeded") => return,
                Some("failed" | "canceled") => panic!("task {uid} did not succeed: {task}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "task {uid} did not finish: {task}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Miroir over `groups` x `per_group` nodes at `rf`, and one node, both given `settings` and
/// `documents` for index `uid`.
async fn loaded(
    (groups, per_group, rf): (usize, usize, u32),
    uid: &str,
    settings: &Value,
    documents: &Value,
) -> (Cluster, Single) {
    let cluster =
        ClusterBuilder::new(groups, per_group, rf).master_key(KEY).vector_search().start().await;
    let single = Single::start();
    let create = json!({"uid": uid, "primaryKey": "id"});
    let settings_path = format!("/indexes/{uid}/settings");
    let documents_path = format!("/indexes/{uid}/documents");
    for (method, path, body) in [
        ("POST", "/indexes", &create),
        ("PATCH", settings_path.as_str(), settings),
        ("POST", documents_path.as_str(), documents),
    ] {
        let task = cluster.send_and_wait(method, path, body).await;
        assert_eq!(task["status"], "succeeded", "{path} through Miroir: {task}");
        single.send_and_wait(method, path, body).await;
    }
    (cluster, single)
}

fn assert_no_bookkeeping(answer: &Value) {
    assert!(!answer.to_string().contains("_miroir"), "bookkeeping leaked: {answer}");
}

fn ids(results: &Value) -> Vec<String> {
    results.as_array().expect("a list of documents").iter().map(|d| d["id"].to_string()).collect()
}

/// The documents of an answer as a sorted list, to compare with one node's as a set.
fn as_set(results: &Value) -> Vec<String> {
    let mut all: Vec<String> =
        results.as_array().expect("a list").iter().map(Value::to_string).collect();
    all.sort();
    all
}

/// Each request of `cases` is refused by the single node, and Miroir answers it with the same
/// status and body.
async fn assert_same_errors<const N: usize>(
    cluster: &Cluster,
    single: &Single,
    label: &str,
    cases: [(&str, &str, Option<Value>); N],
) {
    for (method, path, body) in cases {
        let miroir = match &body {
            Some(body) => cluster.send_json(method, path, body).await,
            None => cluster.get(path).await,
        };
        let (status, one) = single.call(method, path, body.as_ref()).await;
        assert!(status >= 400, "{path}: one node accepts {body:?}");
        assert_eq!((miroir.status, &miroir.body), (status, &one), "{label}: {path} {body:?}");
    }
}

async fn browse_checks(topology: (usize, usize, u32)) {
    let docs: Vec<Value> = products().into_iter().take(300).collect();
    let all_ids: BTreeSet<String> = docs.iter().map(|d| d["id"].to_string()).collect();
    let settings = json!({"filterableAttributes": ["brand", "year", "category"]});
    let (cluster, single) = loaded(topology, "p", &settings, &Value::from(docs)).await;
    let label = format!("{topology:?}");

    // GET pages of 37 and POST pages of 50: every document exactly once, `total` each time.
    for (limit, post) in [(37usize, false), (50, true)] {
        let mut seen = Vec::new();
        for page in 0.. {
            let offset = page * limit;
            let answer = if post {
                let body = json!({"offset": offset, "limit": limit});
                cluster.send_json("POST", "/indexes/p/documents/fetch", &body).await
            } else {
                cluster.get(&format!("/indexes/p/documents?offset={offset}&limit={limit}")).await
            };
            assert_eq!(answer.status, 200, "{label}: {:?}", answer.body);
            assert_no_bookkeeping(&answer.body);
            assert_eq!(answer.body["total"], 300, "{label}: total of page {page}");
            assert_eq!(
                (answer.body["offset"].clone(), answer.body["limit"].clone()),
                (json!(offset), json!(limit))
            );
            let page_ids = ids(&answer.body["results"]);
            assert_eq!(page_ids.len(), limit.min(300usize.saturating_sub(offset)), "{label}");
            if page_ids.is_empty() {
                break;
            }
            seen.extend(page_ids);
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{label}: a document was served twice");
        assert_eq!(unique, all_ids, "{label}: pages must cover every document");
    }

    // The same page, asked again (other groups, other replicas), is the same page.
    let first = cluster.get("/indexes/p/documents?offset=120&limit=30").await.body;
    for _ in 0..3 {
        let again = cluster.get("/indexes/p/documents?offset=120&limit=30").await.body;
        assert_eq!(again, first, "{label}: browse order must not depend on the replicas");
    }

    // Filter and fields: the same documents and total as one node.
    let fetch = json!({"fields": ["id", "brand", "year"], "filter": "brand = Initech OR year = 2019",
                       "limit": 1000});
    let miroir = cluster.send_json("POST", "/indexes/p/documents/fetch", &fetch).await;
    let (status, one) = single.call("POST", "/indexes/p/documents/fetch", Some(&fetch)).await;
    assert_eq!((miroir.status, status), (200, 200), "{label}: {:?}", miroir.body);
    assert!(one["total"].as_u64().unwrap_or(0) > 10, "the filter matches documents: {one}");
    assert_eq!(miroir.body["total"], one["total"], "{label}: filtered total");
    assert_eq!(as_set(&miroir.body["results"]), as_set(&one["results"]), "{label}: fetch");

    // A filtered GET page in the middle: one node's total, documents of that filter only.
    let path =
        "/indexes/p/documents?filter=category%20%3D%20drone&fields=id,category&offset=3&limit=4";
    let miroir = cluster.get(path).await;
    let (_, one) = single.call("GET", path, None).await;
    assert_eq!(miroir.body["total"], one["total"], "{label}: filtered GET total");
    let page = miroir.body["results"].as_array().expect("results");
    assert_eq!(page.len(), 4, "{label}: {:?}", miroir.body);
    assert!(page
        .iter()
        .all(|d| d["category"] == "drone" && d.as_object().map(|o| o.len()) == Some(2)));

    // `ids`: exactly those documents.
    let wanted = json!({"ids": ["p0000003", "p0000150", "p0000299", "nope"], "fields": ["id"]});
    let miroir = cluster.send_json("POST", "/indexes/p/documents/fetch", &wanted).await;
    let (_, one) = single.call("POST", "/indexes/p/documents/fetch", Some(&wanted)).await;
    assert_eq!(miroir.body["total"], one["total"], "{label}: ids total");
    assert_eq!(as_set(&miroir.body["results"]), as_set(&one["results"]), "{label}: ids");

    // Errors exactly as one node gives them.
    let errors = [
        ("GET", "/indexes/p/documents?limit=abc", None),
        ("GET", "/indexes/p/documents?filter=brand%20%3D", None),
        ("GET", "/indexes/p/documents?unknown=1", None),
        ("POST", "/indexes/p/documents/fetch", Some(json!({"filter": "brand ="}))),
        ("POST", "/indexes/p/documents/fetch", Some(json!({"offset": -1}))),
        ("POST", "/indexes/p/documents/fetch", Some(json!({"fields": "id"}))),
    ];
    assert_same_errors(&cluster, &single, &label, errors).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_over_three_nodes_rf1_pages_every_document_once() {
    browse_checks((1, 3, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_over_two_groups_of_two_rf2_pages_every_document_once() {
    browse_checks((2, 2, 2)).await;
}

fn vectors() -> Value {
    let path = shared_dir().join("datasets/vectors-400.json");
    serde_json::from_slice(&std::fs::read(&path).expect("vectors dataset")).expect("vectors JSON")
}

/// An answer without what changes from run to run.
fn stable(mut answer: Value) -> Value {
    if let Value::Object(map) = &mut answer {
        map.remove("processingTimeMs");
    }
    answer
}

async fn similar_checks(topology: (usize, usize, u32)) {
    let settings = json!({"embedders": {"default": {"source": "userProvided", "dimensions": 8}},
                          "filterableAttributes": ["group"]});
    let (cluster, single) = loaded(topology, "v", &settings, &vectors()).await;
    let label = format!("{topology:?}");
    let requests = [
        json!({"id": 7, "embedder": "default", "limit": 10, "showRankingScore": true}),
        json!({"id": 123, "embedder": "default", "offset": 5, "limit": 7,
               "showRankingScoreDetails": true}),
        json!({"id": "42", "embedder": "default", "filter": "group = 2",
               "attributesToRetrieve": ["title"], "limit": 15}),
        json!({"id": 0, "embedder": "default", "rankingScoreThreshold": 0.8, "limit": 50,
               "showRankingScore": true}),
        json!({"id": 399, "embedder": "default", "retrieveVectors": true, "limit": 3}),
        json!({"id": 250, "embedder": "default", "offset": 390, "limit": 20}),
    ];
    for request in &requests {
        let miroir = cluster.send_json("POST", "/indexes/v/similar", request).await;
        let (status, one) = single.call("POST", "/indexes/v/similar", Some(request)).await;
        assert_eq!((miroir.status, status), (200, 200), "{label} {request}: {:?}", miroir.body);
        assert_no_bookkeeping(&miroir.body);
        assert_eq!(stable(miroir.body), stable(one), "{label}: similar {request}");
    }
    let get = "/indexes/v/similar?id=19&embedder=default&limit=6&showRankingScore=true\
               &filter=group%20%3D%200&attributesToRetrieve=id,group";
    let miroir = cluster.get(get).await;
    let (status, one) = single.call("GET", get, None).await;
    assert_eq!((miroir.status, status), (200, 200), "{label}: {:?}", miroir.body);
    assert!(one["hits"].as_array().is_some_and(|h| h.len() == 6), "{one}");
    assert_eq!(stable(miroir.body), stable(one), "{label}: GET similar");

    // Errors exactly as one node gives them.
    let errors = [
        ("POST", "/indexes/v/similar", Some(json!({"embedder": "default"}))),
        ("POST", "/indexes/v/similar", Some(json!({"id": 7}))),
        ("POST", "/indexes/v/similar", Some(json!({"id": 7, "embedder": "nope"}))),
        ("POST", "/indexes/v/similar", Some(json!({"id": 100000, "embedder": "default"}))),
        ("POST", "/indexes/v/similar", Some(json!({"id": "a b", "embedder": "default"}))),
        ("POST", "/indexes/v/similar", Some(json!({"id": 7, "embedder": "default", "q": "x"}))),
        (
            "POST",
            "/indexes/v/similar",
            Some(json!({"id": 7, "embedder": "default",
                                                    "filter": "group >"})),
        ),
        ("GET", "/indexes/v/similar?id=7&embedder=default&limit=x", None),
        ("POST", "/indexes/nope/similar", Some(json!({"id": 7, "embedder": "default"}))),
    ];
    assert_same_errors(&cluster, &single, &label, errors).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_over_three_nodes_rf1_equals_one_node() {
    similar_checks((1, 3, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_over_two_groups_of_three_rf2_equals_one_node() {
    // Each node holds about two thirds of the shards: no node can answer alone.
    similar_checks((2, 3, 2)).await;
}
