//! The development node over real HTTP: task life cycle, authentication and keys, documents in
//! every format, and errors in Meilisearch's shape.

use std::time::{Duration, Instant};

use miroir_devnode::testing::TestNode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

const KEY: &str = "api-test-master-key";

struct Api {
    node: TestNode,
    http: Client,
}

impl Api {
    fn start() -> Self {
        Self::with(TestNode::start(Some(KEY)))
    }

    fn with(node: TestNode) -> Self {
        let http = Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
        Self { node, http }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.node.url())).bearer_auth(KEY)
    }

    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        read(req.send().expect("request"))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None)
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body))
    }

    /// Poll a task until it is terminal (at most 20 s) and return it.
    fn wait(&self, answer: &(u16, Value)) -> Value {
        assert_eq!(answer.0, 202, "{answer:?}");
        let uid = answer.1["taskUid"].as_u64().expect("taskUid is an integer");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, task) = self.get(&format!("/tasks/{uid}"));
            if ["succeeded", "failed", "canceled"].contains(&task["status"].as_str().unwrap_or(""))
            {
                return task;
            }
            assert!(Instant::now() < deadline, "task {uid} did not finish: {task}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn read(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().expect("body");
    (
        status,
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") },
    )
}

#[test]
fn tasks_move_from_enqueued_through_processing_to_succeeded() {
    let api = Api::with(TestNode::start_with_delay(Some(KEY), Duration::from_millis(300)));
    let created = api.post("/indexes", json!({"uid": "movies", "primaryKey": "id"}));
    assert_eq!(created.0, 202);
    assert_eq!(created.1["status"], "enqueued");
    assert_eq!(created.1["type"], "indexCreation");
    let uid = created.1["taskUid"].as_u64().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (_, task) = api.get(&format!("/tasks/{uid}"));
        let status = task["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        if status == "succeeded" {
            assert_eq!(task["details"], json!({"primaryKey": "id"}));
            assert!(task["duration"].as_str().unwrap().starts_with("PT"));
            assert!(task["finishedAt"].is_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(seen.contains(&"processing".to_string()), "never saw processing: {seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("succeeded"), "{seen:?}");
}

#[test]
fn documents_in_json_ndjson_and_csv_are_indexed() {
    let api = Api::start();
    let task = api.wait(&api.post("/indexes/shop/documents", json!([{"id": 1, "name": "one"}])));
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(task["details"], json!({"receivedDocuments": 1, "indexedDocuments": 1}));
    let nd = api
        .req(reqwest::Method::POST, "/indexes/shop/documents")
        .header("Content-Type", "application/x-ndjson")
        .body("{\"id\":2,\"name\":\"two\"}\n{\"id\":3,\"name\":\"three\"}\n")
        .send()
        .unwrap();
    assert_eq!(api.wait(&read(nd))["status"], "succeeded");
    let csv = api
        .req(reqwest::Method::POST, "/indexes/shop/documents")
        .header("Content-Type", "text/csv")
        .body("id:number,name,price:number\n4,four,4.5\n")
        .send()
        .unwrap();
    assert_eq!(api.wait(&read(csv))["status"], "succeeded");
    let update = api.send(
        reqwest::Method::PUT,
        "/indexes/shop/documents",
        Some(json!([{"id": 1, "price": 9}])),
    );
    api.wait(&update);
    let (status, doc) = api.get("/indexes/shop/documents/1");
    assert_eq!(status, 200);
    assert_eq!(doc, json!({"id": 1, "name": "one", "price": 9}));
    assert_eq!(
        api.get("/indexes/shop/documents/4").1,
        json!({"id": 4, "name": "four", "price": 4.5})
    );
    let (_, browse) = api.get("/indexes/shop/documents?limit=2&offset=1&fields=id");
    assert_eq!(
        browse,
        json!({"results": [{"id": 2}, {"id": 3}], "offset": 1, "limit": 2, "total": 4})
    );
    let (_, index) = api.get("/indexes/shop");
    assert_eq!(index["primaryKey"], "id", "the primary key was inferred");
}

#[test]
fn every_route_but_health_needs_the_key() {
    let api = Api::start();
    let bare = |path: &str| read(api.http.get(format!("{}{path}", api.node.url())).send().unwrap());
    assert_eq!(bare("/health").0, 200);
    let (status, err) = bare("/indexes");
    assert_eq!((status, err["code"].as_str()), (401, Some("missing_authorization_header")));
    let (status, err) = read(
        api.http.get(format!("{}/indexes", api.node.url())).bearer_auth("wrong").send().unwrap(),
    );
    assert_eq!(
        (status, err["code"].as_str(), err["type"].as_str()),
        (403, Some("invalid_api_key"), Some("auth"))
    );
}

#[test]
fn keys_created_with_a_uid_are_deterministic_and_scoped() {
    let uid = "0f6b4b7d-29b6-4c2f-a9d3-5f0e4c1e8a11";
    let body = json!({"uid": uid, "actions": ["search"], "indexes": ["books"], "expiresAt": null});
    let a = Api::start();
    let b = Api::start();
    let (status, key_a) = a.post("/keys", body.clone());
    assert_eq!(status, 201, "{key_a}");
    let (_, key_b) = b.post("/keys", body);
    assert_eq!(key_a["key"], key_b["key"], "same uid and master key give the same key");
    a.wait(&a.post("/indexes", json!({"uid": "books"})));
    a.wait(&a.post("/indexes", json!({"uid": "films"})));
    let search = |index: &str| {
        let resp = a
            .http
            .post(format!("{}/indexes/{index}/search", a.node.url()))
            .bearer_auth(key_a["key"].as_str().unwrap())
            .json(&json!({"q": ""}))
            .send()
            .unwrap();
        read(resp)
    };
    assert_eq!(search("books").0, 200);
    assert_eq!(search("films").0, 403);
    let (_, listed) = a.get("/keys");
    assert_eq!(listed["total"], 3, "two default keys and ours: {listed}");
}

#[test]
fn errors_have_meilisearch_codes() {
    let api = Api::start();
    let (status, err) = api.get("/indexes/missing");
    assert_eq!((status, err["code"].as_str()), (404, Some("index_not_found")));
    assert_eq!(err["link"], "https://docs.meilisearch.com/errors#index_not_found");
    let (status, err) = api.post("/indexes", json!({"uid": "bad uid!"}));
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_index_uid")));
    let (status, err) = api.get("/tasks/424242");
    assert_eq!((status, err["code"].as_str()), (404, Some("task_not_found")));
    let raw = api
        .req(reqwest::Method::POST, "/indexes")
        .header("Content-Type", "application/json")
        .body("{\"uid\":")
        .send()
        .unwrap();
    let (status, err) = read(raw);
    assert_eq!((status, err["code"].as_str()), (400, Some("malformed_payload")));
    let plain = api
        .req(reqwest::Method::POST, "/indexes/x/documents")
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(read(plain).0, 415);
    let failed = api.wait(&api.post("/indexes/x/documents", json!([{"title": "no id"}])));
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "index_primary_key_no_candidate_found");
    let (status, err) = api.post("/tasks/cancel", json!(null));
    assert_eq!((status, err["code"].as_str()), (400, Some("missing_task_filters")));
}

#[test]
fn enqueued_tasks_can_be_canceled_and_finished_tasks_deleted() {
    let api = Api::with(TestNode::start_with_delay(Some(KEY), Duration::from_millis(200)));
    let first = api.post("/indexes", json!({"uid": "a"}));
    let second = api.post("/indexes", json!({"uid": "b"}));
    let second_uid = second.1["taskUid"].as_u64().unwrap();
    let cancel = api.send(reqwest::Method::POST, &format!("/tasks/cancel?uids={second_uid}"), None);
    let cancel_task = api.wait(&cancel);
    assert_eq!(cancel_task["type"], "taskCancelation");
    assert_eq!(cancel_task["details"]["canceledTasks"], 1, "{cancel_task}");
    let canceled = api.wait(&second);
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["canceledBy"], cancel_task["uid"]);
    assert_eq!(api.wait(&first)["status"], "succeeded");
    let first_uid = first.1["taskUid"].as_u64().unwrap();
    let deletion =
        api.wait(&api.send(reqwest::Method::DELETE, &format!("/tasks?uids={first_uid}"), None));
    assert_eq!(deletion["details"]["deletedTasks"], 1);
    assert_eq!(api.get(&format!("/tasks/{first_uid}")).0, 404);
}

#[test]
fn documents_are_edited_by_a_function_once_the_feature_is_on() {
    let api = Api::start();
    let edit = json!({"function": "doc.t = doc.t.to_upper()"});
    api.wait(&api.post("/indexes/e/documents", json!([{"id": 1, "t": "a", "n": 1}])));
    // Off (the default): refused before anything is enqueued.
    let (status, body) = api.post("/indexes/e/documents/edit", edit.clone());
    assert_eq!((status, body["code"].as_str()), (400, Some("feature_not_enabled")), "{body}");
    let (status, _) = api.send(
        reqwest::Method::PATCH,
        "/experimental-features",
        Some(json!({"editDocumentsByFunction": true})),
    );
    assert_eq!(status, 200);
    api.wait(&api.send(
        reqwest::Method::PATCH,
        "/indexes/e/settings",
        Some(json!({"filterableAttributes": ["n"]})),
    ));
    api.wait(&api.post(
        "/indexes/e/documents",
        json!([{"id": 2, "t": "b", "n": 2}, {"id": 3, "t": "c", "n": 3}]),
    ));
    let function = "if doc.n == 3 { doc = () } else { doc.t = doc.t.to_upper() + context.s }";
    let body = json!({"function": function, "filter": "n >= 2", "context": {"s": "!"}});
    let answer = api.post("/indexes/e/documents/edit", body);
    assert_eq!(answer.1["type"], "documentEdition", "{answer:?}");
    let task = api.wait(&answer);
    assert_eq!(task["status"], "succeeded", "{task}");
    assert_eq!(
        task["details"],
        json!({
            "context": {"s": "!"},
            "deletedDocuments": 1,
            "editedDocuments": 1,
            "function": function,
            "originalFilter": "\"n >= 2\"",
        })
    );
    let (_, docs) = api.get("/indexes/e/documents");
    assert_eq!(docs["results"], json!([{"id": 1, "t": "a", "n": 1}, {"id": 2, "t": "B!", "n": 2}]));
    // Changing the primary key fails the task, and nothing is applied.
    let task = api.wait(&api.post("/indexes/e/documents/edit", json!({"function": "doc.id = 7"})));
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error"]["code"], "edit_documents_by_function_error");
    assert_eq!((task["details"]["editedDocuments"].as_u64()), Some(0));
    // A loop is stopped; a filter on a field that is not filterable fails the task.
    let task = api.wait(&api.post("/indexes/e/documents/edit", json!({"function": "loop {}"})));
    assert_eq!(task["error"]["code"], "edit_documents_by_function_error", "{task}");
    let body = json!({"function": "doc.t = 1", "filter": "t = a"});
    let task = api.wait(&api.post("/indexes/e/documents/edit", body));
    assert_eq!(task["error"]["code"], "invalid_document_filter", "{task}");
    let (_, docs) = api.get("/indexes/e/documents");
    assert_eq!(docs["total"], 2);
    // Request errors.
    let (status, body) = api.post("/indexes/e/documents/edit", json!({"filter": "n = 1"}));
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    let (status, body) =
        api.post("/indexes/e/documents/edit", json!({"function": "x", "filter": "n ="}));
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_document_filter")), "{body}");
}
