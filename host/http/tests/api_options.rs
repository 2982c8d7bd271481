//! Request options of the Meilisearch API answered through Miroir over three development nodes
//! exactly as one development node answers them: documents `sort` (with `fields`, `ids`,
//! offsets), a primary key that cannot be inferred, a primary key changed while the index is
//! empty, facet patterns on an index without filterable attributes, `page=0`,
//! `showPerformanceDetails`, unknown routes and routes behind an experimental feature (editing
//! documents by function, served, has its own test: `edit_documents.rs`).

mod common;

use std::time::Duration;

use common::ClusterBuilder;
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const KEY: &str = "options-master-key";

/// Miroir over three nodes (many shards, so that every page spans shards) and one node.
struct Pair {
    miroir: common::Cluster,
    node: TestNode,
    http: reqwest::Client,
}

impl Pair {
    async fn start() -> Pair {
        let miroir = ClusterBuilder::new(1, 3, 1).shards(8).master_key(KEY).start().await;
        let node = tokio::task::spawn_blocking(|| TestNode::start(Some(KEY))).await.expect("node");
        Pair { miroir, node, http: reqwest::Client::new() }
    }

    /// `(status, body)` from Miroir and from the one node, for the same request.
    async fn both(&self, method: &str, path: &str, body: Option<Value>) -> [(u16, Value); 2] {
        let mut out = Vec::new();
        for base in [self.miroir.url.clone(), self.node.url()] {
            out.push(call(&self.http, &base, method, path, body.clone()).await);
        }
        [out.remove(0), out.remove(0)]
    }

    /// Sends to both and waits for both tasks; returns both finished tasks.
    async fn write(&self, method: &str, path: &str, body: Value) -> [Value; 2] {
        let mut out = Vec::new();
        for base in [self.miroir.url.clone(), self.node.url()] {
            let (status, answer) = call(&self.http, &base, method, path, Some(body.clone())).await;
            assert_eq!(status, 202, "{base}{path}: {answer}");
            let uid = answer["taskUid"].as_u64().expect("taskUid");
            out.push(wait(&self.http, &base, uid).await);
        }
        [out.remove(0), out.remove(0)]
    }

    /// Asserts Miroir answers what the node answers.
    async fn same(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let [miroir, node] = self.both(method, path, body).await;
        assert_eq!(miroir, node, "{method} {path}: Miroir (left) and one node (right) differ");
        miroir.1
    }
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    common::call_json(http, base, KEY, method, path, body).await
}

async fn wait(http: &reqwest::Client, base: &str, uid: u64) -> Value {
    for _ in 0..600 {
        let (_, task) = call(http, base, "GET", &format!("/tasks/{uid}"), None).await;
        if matches!(task["status"].as_str(), Some("succeeded" | "failed" | "canceled")) {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {uid} on {base} did not finish");
}

fn catalogue() -> Value {
    let kinds = ["a", "b", "c"];
    Value::from(
        (1..=30)
            .map(|i| {
                let mut doc = json!({"id": i, "kind": kinds[i % 3], "title": format!("item {i}")});
                if i % 7 != 0 {
                    doc["rank"] = json!((i * 37) % 31);
                }
                if i % 5 == 0 {
                    doc["name"] = json!(if i % 10 == 0 { "Zeta" } else { "alpha" });
                }
                doc
            })
            .collect::<Vec<_>>(),
    )
}

async fn with_documents() -> Pair {
    let pair = Pair::start().await;
    pair.write("POST", "/indexes", json!({"uid": "docs", "primaryKey": "id"})).await;
    let settings = json!({"sortableAttributes": ["rank", "name", "kind", "id"],
                          "filterableAttributes": ["kind"]});
    pair.write("PATCH", "/indexes/docs/settings", settings).await;
    pair.write("POST", "/indexes/docs/documents", catalogue()).await;
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sorted_document_pages_equal_one_nodes_pages() {
    let pair = with_documents().await;
    for path in [
        "/indexes/docs/documents?sort=rank:desc&limit=7",
        "/indexes/docs/documents?sort=rank:asc&offset=5&limit=10&fields=id,rank",
        "/indexes/docs/documents?sort=rank:asc,id:desc&limit=30&fields=title",
        "/indexes/docs/documents?sort=name:asc,id:asc&limit=8&fields=id,name",
        "/indexes/docs/documents?sort=kind:desc,rank:asc&filter=kind%20%3D%20a&limit=4&offset=2",
    ] {
        let body = pair.same("GET", path, None).await;
        assert!(body["results"].as_array().is_some_and(|r| !r.is_empty()), "{path}: {body}");
    }
    for body in [
        json!({"sort": ["rank:desc"], "limit": 5, "fields": ["id"]}),
        json!({"sort": ["rank:asc"], "ids": ["4", "2", "9", "14"], "fields": ["id", "rank"]}),
        json!({"sort": ["name:desc", "rank:desc"], "offset": 3, "limit": 6}),
        json!({"fields": ["id", "title"], "ids": [3, 1], "limit": 5}),
    ] {
        pair.same("POST", "/indexes/docs/documents/fetch", Some(body)).await;
    }
    // Documents that tie keep each shard's order, not one node's (documented): compared as
    // sets here.
    // Refusals are one node's.
    pair.same("GET", "/indexes/docs/documents?sort=title:asc", None).await;
    pair.same("POST", "/indexes/docs/documents/fetch", Some(json!({"sort": ["rank"]}))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_keys_fail_and_change_as_on_one_node() {
    let pair = Pair::start().await;
    // No field ends in `id`: 202, then a failed task, and no index left.
    let [miroir, node] =
        pair.write("POST", "/indexes/nokey/documents", json!([{"title": "x"}])).await;
    assert_eq!(miroir["status"], "failed");
    assert_eq!(miroir["error"], node["error"]);
    // As for an ambiguous key, the index the failed write would have created is not left.
    let (status, _) = call(&pair.http, &pair.miroir.url, "GET", "/indexes/nokey", None).await;
    assert_eq!(status, 404);

    // A new primary key while the index is empty takes effect, and routes the next write.
    pair.write("POST", "/indexes", json!({"uid": "pk", "primaryKey": "id"})).await;
    let [miroir, node] = pair.write("PATCH", "/indexes/pk", json!({"primaryKey": "sku"})).await;
    assert_eq!((&miroir["status"], &miroir["error"]), (&node["status"], &node["error"]));
    let [(_, index), (_, on_node)] = pair.both("GET", "/indexes/pk", None).await;
    assert_eq!((&index["primaryKey"], &on_node["primaryKey"]), (&json!("sku"), &json!("sku")));
    pair.write("POST", "/indexes/pk/documents", json!([{"sku": "a1", "id": 5}])).await;
    pair.same("GET", "/indexes/pk/documents/a1", None).await;
    // Once it holds documents, the change fails and the key stays.
    let [miroir, node] = pair.write("PATCH", "/indexes/pk", json!({"primaryKey": "id"})).await;
    assert_eq!(miroir["status"], "failed");
    assert_eq!(miroir["error"]["code"], node["error"]["code"]);
    let [(_, index), (_, on_node)] = pair.both("GET", "/indexes/pk", None).await;
    assert_eq!((&index["primaryKey"], &on_node["primaryKey"]), (&json!("sku"), &json!("sku")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_options_answer_as_one_node() {
    let pair = with_documents().await;
    pair.write("POST", "/indexes", json!({"uid": "plain", "primaryKey": "id"})).await;
    pair.write("POST", "/indexes/plain/documents", json!([{"id": 1, "t": "x"}])).await;
    // A facet pattern where the client made nothing filterable: refused as one node refuses.
    let body = pair.same("POST", "/indexes/plain/search", Some(json!({"facets": ["*"]}))).await;
    assert_eq!(body["code"], "invalid_search_facets");
    // ... and answered where the client did.
    let [miroir, node] =
        pair.both("POST", "/indexes/docs/search", Some(json!({"facets": ["*"], "limit": 0}))).await;
    assert_eq!(miroir, node);
    // `page=0`: no hits, the page size as sent.
    for path in ["/indexes/docs/search?page=0&hitsPerPage=5", "/indexes/docs/search?page=0"] {
        let [(ms, mut mb), (ns, mut nb)] = pair.both("GET", path, None).await;
        mb["processingTimeMs"] = json!(0);
        nb["processingTimeMs"] = json!(0);
        assert_eq!((ms, mb), (ns, nb), "{path}");
    }
    // `showPerformanceDetails`, in a POST body and as GET text.
    for (method, path, body) in [
        (
            "POST",
            "/indexes/docs/search",
            Some(json!({"q": "item", "showPerformanceDetails": true})),
        ),
        ("GET", "/indexes/docs/search?q=item&showPerformanceDetails=true", None),
    ] {
        let [(ms, mb), (ns, nb)] = pair.both(method, path, body).await;
        assert_eq!(ms, ns);
        let keys = |b: &Value| b["performanceDetails"].as_object().map(|o| o.len());
        assert!(keys(&mb).is_some_and(|n| n > 0), "{mb}");
        assert_eq!(keys(&mb), keys(&nb));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_and_unserved_routes_answer_as_one_node() {
    let pair = Pair::start().await;
    for (method, path) in [("GET", "/nope"), ("POST", "/indexes/x/nope"), ("DELETE", "/a/b/c")] {
        pair.same(method, path, None).await;
    }
    // Behind an experimental feature that is off: the node's refusal (the development node
    // does not know these routes either, so both are its "not found").
    for (method, path) in [("POST", "/chats/w/chat/completions"), ("GET", "/logs/stream")] {
        let [(ms, _), (ns, _)] = pair.both(method, path, Some(json!({}))).await;
        assert_eq!(ms, ns, "{method} {path}");
    }
    let (status, body) =
        call(&pair.http, &pair.miroir.url, "POST", "/export", Some(json!({"url": "x"}))).await;
    assert_eq!((status, body["code"].as_str()), (501, Some("miroir_not_supported")));
}
