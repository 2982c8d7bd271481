//! The operations commands against a real `miroir serve` over development nodes: `status`,
//! `tasks`, and a logical backup (`export`, then `import` into a new index, compared document by
//! document and setting by setting), plus the export routes themselves; a node added with
//! `nodes add` and its run followed with `rebalance status --watch` until it ends.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use gateway::{nodes_section, send, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;

const KEY: &str = "ops-master-key";
const NODE_KEY: &str = "ops-node-key";
const DOCUMENTS: usize = 2500;
const GENRES: [&str; 3] = ["a", "b", "c"];

fn cli(base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_miroir"))
        .args(args)
        .args(["--url", base, "--key", KEY])
        .env_remove("MIROIR_ADMIN_API_KEY")
        .env_remove("MIROIR_MASTER_KEY")
        .output()
        .expect("run miroir")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every document of `index` by id, through the client API.
fn documents_by_id(
    client: &reqwest::blocking::Client,
    base: &str,
    index: &str,
) -> BTreeMap<u64, Value> {
    let url = format!("{base}/indexes/{index}/documents?limit=10000");
    let (status, body) = send(client, "GET", &url, KEY, None);
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).expect("json");
    page["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|d| (d["id"].as_u64().expect("numeric id"), d.clone()))
        .collect()
}

#[test]
fn status_tasks_and_a_backup_restored_into_a_new_index() {
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 4\n{}",
        nodes_section(nodes.iter().map(TestNode::url))
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");

    let created = send(
        &client,
        "POST",
        &format!("{base}/indexes"),
        KEY,
        Some(json!({"uid": "books", "primaryKey": "id"})),
    );
    let creation_uid = serde_json::from_str::<Value>(&created.1).expect("json")["taskUid"].clone();
    wait_task(&client, &base, KEY, created);
    let settings = json!({"filterableAttributes": ["genre"], "sortableAttributes": ["year"], "stopWords": ["the"]});
    let patched =
        send(&client, "PATCH", &format!("{base}/indexes/books/settings"), KEY, Some(settings));
    wait_task(&client, &base, KEY, patched);
    let documents: Vec<Value> = (0..DOCUMENTS)
        .map(|i| json!({"id": i, "title": format!("Book {i}"), "genre": GENRES[i % 3], "year": 1900 + i % 120}))
        .collect();
    let added = send(
        &client,
        "POST",
        &format!("{base}/indexes/books/documents"),
        KEY,
        Some(Value::Array(documents)),
    );
    wait_task(&client, &base, KEY, added);

    // status: every node, its health, the index and its coverage.
    let status = cli(&base, &["status"]);
    let out = text(&status.stdout);
    assert!(status.status.success(), "{out}{}", text(&status.stderr));
    for expected in ["Miroir ready", "n0", "n1", "healthy", "books", "100%"] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }

    // tasks list and get.
    let listed = cli(&base, &["tasks", "list", "--index", "books"]);
    let out = text(&listed.stdout);
    assert!(listed.status.success(), "{out}{}", text(&listed.stderr));
    assert!(out.contains("documentAdditionOrUpdate") && out.contains("succeeded"), "{out}");
    let one = cli(&base, &["tasks", "get", &creation_uid.to_string()]);
    let task: Value = serde_json::from_slice(&one.stdout)
        .unwrap_or_else(|_| panic!("a task as JSON: {}", text(&one.stderr)));
    assert_eq!(task["uid"], creation_uid);
    assert_eq!(task["type"], "indexCreation");

    // export, then import into a new index: same documents, same settings.
    let file = dir.path().join("books.ndjson");
    let exported = cli(&base, &["export", "books", "--output", file.to_str().expect("utf-8 path")]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let contents = std::fs::read_to_string(&file).expect("the export file");
    let mut lines = contents.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header")).expect("json header");
    assert_eq!(header["miroirExport"], 1);
    assert_eq!(header["primaryKey"], "id");
    assert_eq!(header["settings"]["filterableAttributes"], json!(["genre"]));
    let exported_documents: Vec<Value> =
        lines.map(|l| serde_json::from_str(l).expect("a json document")).collect();
    assert_eq!(exported_documents.len(), DOCUMENTS, "every document exactly once");
    assert!(contents.lines().all(|l| !l.contains("_miroir")), "bookkeeping left in the export");

    let imported = cli(
        &base,
        &["import", "restored", file.to_str().expect("utf-8 path"), "--batch-size", "700"],
    );
    assert!(imported.status.success(), "{}{}", text(&imported.stdout), text(&imported.stderr));
    assert!(text(&imported.stdout).contains(&format!("imported {DOCUMENTS} documents")));
    let original = documents_by_id(&client, &base, "books");
    let restored = documents_by_id(&client, &base, "restored");
    assert_eq!(original.len(), DOCUMENTS);
    assert_eq!(original, restored, "the restored documents differ");
    let (_, before) = send(&client, "GET", &format!("{base}/indexes/books/settings"), KEY, None);
    let (_, after) = send(&client, "GET", &format!("{base}/indexes/restored/settings"), KEY, None);
    assert_eq!(
        serde_json::from_str::<Value>(&before).unwrap(),
        serde_json::from_str::<Value>(&after).unwrap()
    );
    let (_, index) = send(&client, "GET", &format!("{base}/indexes/restored"), KEY, None);
    assert_eq!(serde_json::from_str::<Value>(&index).unwrap()["primaryKey"], "id");

    // The guide's export path is an admin route, streamed as NDJSON.
    let response = client
        .get(format!("{base}/_indexes/books/documents/export"))
        .bearer_auth(KEY)
        .send()
        .expect("export");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(response.text().expect("body").lines().count(), DOCUMENTS);
    let anonymous =
        client.get(format!("{base}/_indexes/books/documents/export")).send().expect("answer");
    assert_eq!(anonymous.status(), 401);

    // An index that does not exist: a clear failure, no file left half-written as a success.
    let missing = cli(
        &base,
        &["export", "nope", "--output", dir.path().join("nope.ndjson").to_str().unwrap()],
    );
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("index_not_found"), "{}", text(&missing.stderr));
}

#[test]
fn a_node_added_from_the_cli_and_its_run_watched_to_the_end() {
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 8\n{}",
        nodes_section(nodes.iter().take(2).map(TestNode::url))
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = reqwest::blocking::Client::new();
    let created = send(
        &client,
        "POST",
        &format!("{base}/indexes"),
        KEY,
        Some(json!({"uid": "books", "primaryKey": "id"})),
    );
    wait_task(&client, &base, KEY, created);
    let documents: Vec<Value> =
        (0..600).map(|id| json!({"id": id, "title": format!("b{id}")})).collect();
    let added = send(
        &client,
        "POST",
        &format!("{base}/indexes/books/documents"),
        KEY,
        Some(json!(documents)),
    );
    wait_task(&client, &base, KEY, added);

    let add = cli(&base, &["nodes", "add", "n2", &nodes[2].url(), "--group", "g"]);
    assert!(add.status.success(), "{}{}", text(&add.stdout), text(&add.stderr));
    assert!(text(&add.stdout).contains("rebalance run"), "{}", text(&add.stdout));

    // `--watch` follows the run and exits once it ended (bounded by the child's own timeout).
    let mut watch = Command::new(env!("CARGO_BIN_EXE_miroir"))
        .args(["rebalance", "status", "--watch", "--url", &base, "--key", KEY])
        .env_remove("MIROIR_ADMIN_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run miroir");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let exit = loop {
        if let Some(exit) = watch.try_wait().expect("wait") {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = watch.kill();
            panic!("`rebalance status --watch` did not exit when the run ended");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut watch.stdout.take().expect("stdout"), &mut out)
        .expect("read stdout");
    assert!(exit.success(), "{out}");
    assert!(out.contains("no rebalance running"), "{out}");
    assert!(out.contains("succeeded"), "the finished run is shown: {out}");

    let list = cli(&base, &["nodes", "list"]);
    let listed = text(&list.stdout);
    assert!(list.status.success(), "{listed}");
    let n2 = listed.lines().find(|line| line.contains("n2")).expect("n2 listed");
    assert!(n2.contains("active"), "{listed}");
    // The documents are all still there, once each.
    let search = send(
        &client,
        "POST",
        &format!("{base}/indexes/books/search"),
        KEY,
        Some(json!({"limit": 0})),
    );
    let total: Value = serde_json::from_str(&search.1).expect("json");
    assert_eq!(total["estimatedTotalHits"], 600, "{total}");
}
