//! `POST /multi-search` through `miroir serve` with the multi-search plugin enabled, in front of
//! three development nodes: every query answers what the same search sent alone answers.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

mod gateway;

use gateway::{nodes_section, plugins_dir, send, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

const KEY: &str = "multi-master-key";
const NODE_KEY: &str = "multi-node-key";

fn call(
    client: &reqwest::blocking::Client,
    url: &str,
    method: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, text) = send(client, method, url, KEY, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn wait_task(client: &reqwest::blocking::Client, base: &str, answer: &(u16, Value)) {
    assert_eq!(answer.0, 202, "{answer:?}");
    let uid = answer.1["taskUid"].as_u64().expect("task uid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let (_, task) = call(client, &format!("{base}/tasks/{uid}"), "GET", None);
        match task["status"].as_str() {
            Some("succeeded") => return,
            Some("failed" | "canceled") => panic!("task failed: {task}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    panic!("task {uid} did not finish");
}

type Cluster = (Vec<TestNode>, tempfile::TempDir, Gateway, String, reqwest::blocking::Client);

/// Three development nodes and `miroir serve` with the multi-search plugin (and the
/// vector-search plugin, for the vector queries of a batch) in front of them.
fn start_cluster() -> Cluster {
    start_cluster_with("")
}

/// [`start_cluster`] with `multi_search` options, e.g. `query_timeout: 300ms`.
fn start_cluster_with(multi_search: &str) -> Cluster {
    start_cluster_configured(multi_search, "")
}

/// [`start_cluster_with`] plus top-level configuration lines (`extra`, e.g.
/// `"replication_factor: 2\n"`).
fn start_cluster_configured(multi_search: &str, extra: &str) -> Cluster {
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 8\n{extra}\
         multi_search: {{ enabled: true{multi_search} }}\nvector_search: {{ enabled: true }}\n\
         plugins: {{ dir: \"{}\" }}\n{}",
        plugins_dir("multi_search.wasm").display(),
        nodes_section(nodes.iter().map(TestNode::url)),
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    (nodes, dir, miroir, base, client)
}

fn shared_dir() -> PathBuf {
    std::env::var_os("MIROIR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Runs the contract checker on `recording` against `base` for the steps named `only`.
fn contract_check(base: &str, recording: &std::path::Path, only: &str) -> String {
    let output = Command::new("python3")
        .arg(shared_dir().join("contract/contract.py"))
        .args(["check", "--url", base, "--key", KEY, "--only", only])
        .arg(recording)
        .output()
        .expect("python3 runs the contract checker");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "multi-search differs from one node:\n{stdout}\n{stderr}");
    stdout
}

#[test]
fn multi_search_steps_of_the_vectors_recording_pass_through_miroir() {
    let (_nodes, dir, _miroir, base, _client) = start_cluster();
    let recording = shared_dir().join("contract/recordings/vectors.jsonl");
    let stdout = contract_check(&base, &recording, "multi.");
    assert!(stdout.contains("3 passed, 0 failed"), "{stdout}");

    // `multi.federated` is recorded in `set` mode; it also holds in the stricter modes: the same
    // hits in the same order, and the same totals (a document matched by both queries counted
    // once).
    let text = std::fs::read_to_string(&recording).expect("the recording");
    for mode in ["ranked", "exact", "total"] {
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                let mut step: Value = serde_json::from_str(line).expect("a JSON line");
                if step["name"] == "multi.federated" {
                    step["step"]["compare"] = json!(mode);
                }
                // Data files are named relative to the recording: make them absolute.
                if let Some(file) = step["step"]["body_file"].as_str() {
                    let absolute = recording.parent().expect("a directory").join(file);
                    step["step"]["body_file"] = json!(absolute.to_string_lossy());
                }
                step.to_string()
            })
            .collect();
        let path = dir.path().join(format!("vectors-{mode}.jsonl"));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write the recording");
        let stdout = contract_check(&base, &path, "multi.federated");
        assert!(stdout.contains("1 passed, 0 failed"), "mode {mode}: {stdout}");
    }
}

/// Every step of the vectors scenario (vector, filtered vector, hybrid and keyword searches,
/// `similar`, multi-search), recorded against one development node holding everything, replayed
/// through `miroir serve` over three nodes with the vector-search and multi-search plugins:
/// nothing differs, in every step's compare mode.
#[test]
fn the_whole_vectors_scenario_through_miroir_serve_answers_like_one_node() {
    let (_nodes, dir, _miroir, base, _client) = start_cluster();
    let one = TestNode::start(Some(NODE_KEY));
    let scenario = shared_dir().join("contract/scenarios/vectors.json");
    let raw = dir.path().join("one-node.jsonl");
    let recorded = Command::new("python3")
        .arg(shared_dir().join("contract/contract.py"))
        .args(["record", "--url", &one.url(), "--key", NODE_KEY, "--out"])
        .arg(&raw)
        .arg(&scenario)
        .output()
        .expect("python3 records the scenario");
    assert!(recorded.status.success(), "{}", String::from_utf8_lossy(&recorded.stderr));
    // The recording names its data files relative to itself, so it is checked where it is.
    let steps = std::fs::read_to_string(&raw).expect("the recording").lines().count();
    let recording = raw;
    let stdout = contract_check(&base, &recording, "");
    assert!(stdout.contains(&format!("{steps} passed, 0 failed")), "{steps} steps: {stdout}");
}

#[test]
fn multi_search_through_the_plugin_answers_like_single_searches() {
    let (_nodes, _dir, _miroir, base, client) = start_cluster();
    let create = call(
        &client,
        &format!("{base}/indexes"),
        "POST",
        Some(json!({"uid": "items", "primaryKey": "id"})),
    );
    wait_task(&client, &base, &create);
    let settings = json!({"filterableAttributes": ["kind"], "sortableAttributes": ["price"]});
    wait_task(
        &client,
        &base,
        &call(&client, &format!("{base}/indexes/items/settings"), "PATCH", Some(settings)),
    );
    let words = ["alpha", "bravo", "charlie", "delta", "echo"];
    let docs: Vec<Value> = (0..300)
        .map(|i| {
            json!({"id": i, "title": format!("{} {} item", words[i % 5], words[(i / 5) % 5]),
                        "kind": words[i % 3], "price": (i * 37) % 101})
        })
        .collect();
    wait_task(
        &client,
        &base,
        &call(&client, &format!("{base}/indexes/items/documents"), "POST", Some(json!(docs))),
    );

    let queries = [
        json!({"q": "alpha", "limit": 5, "showRankingScore": true}),
        json!({"q": "bravo delta", "filter": "kind = echo", "limit": 4}),
        json!({"q": "", "sort": ["price:asc"], "limit": 6, "offset": 3}),
    ];
    let batch: Vec<Value> = queries
        .iter()
        .map(|q| {
            let mut q = q.clone();
            q["indexUid"] = json!("items");
            q
        })
        .collect();
    let (status, multi) =
        call(&client, &format!("{base}/multi-search"), "POST", Some(json!({"queries": batch})));
    assert_eq!(status, 200, "{multi}");
    let results = multi["results"].as_array().expect("results");
    assert_eq!(results.len(), queries.len());
    for (query, result) in queries.iter().zip(results) {
        let (_, alone) =
            call(&client, &format!("{base}/indexes/items/search"), "POST", Some(query.clone()));
        assert_eq!(result["indexUid"], "items");
        assert_eq!(result["hits"], alone["hits"], "query {query}");
        assert_eq!(result["estimatedTotalHits"], alone["estimatedTotalHits"], "query {query}");
    }

    let (status, error) = call(
        &client,
        &format!("{base}/multi-search"),
        "POST",
        Some(
            json!({"queries": [{"indexUid": "items", "q": "x"}, {"indexUid": "missing", "q": "x"}]}),
        ),
    );
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["code"], "index_not_found");
    assert!(error["message"].as_str().unwrap_or_default().contains(".queries[1]"), "{error}");
}

/// Creates index `uid` (primary key `id`) through `base` and adds `docs`.
fn load_index(client: &reqwest::blocking::Client, base: &str, uid: &str, docs: &[Value]) {
    let create = call(
        client,
        &format!("{base}/indexes"),
        "POST",
        Some(json!({"uid": uid, "primaryKey": "id"})),
    );
    wait_task(client, base, &create);
    let add = call(client, &format!("{base}/indexes/{uid}/documents"), "POST", Some(json!(docs)));
    wait_task(client, base, &add);
}

/// Documents whose titles make queries overlap: many documents match several queries. `word`
/// and `n` are facets.
fn overlapping_docs(count: usize, offset: usize) -> Vec<Value> {
    let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    (0..count)
        .map(|i| {
            json!({"id": i + offset,
                   "title": format!("{} {} {}", words[i % 6], words[(i / 6) % 6], words[(i / 3) % 6]),
                   "word": words[(i / 5) % 6], "n": (i % 7) as f64 * 1.5})
        })
        .collect()
}

/// Only titles are searched; `word` and `n` are facets.
fn facet_settings() -> Value {
    json!({"searchableAttributes": ["title"], "filterableAttributes": ["word", "n"]})
}

/// The hits' `(id, _federation)` in order.
fn federated_hits(answer: &Value) -> Vec<(Value, Value)> {
    answer["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("hits in {answer}"))
        .iter()
        .map(|h| (h["id"].clone(), h["_federation"].clone()))
        .collect()
}

#[test]
fn federated_multi_search_answers_like_one_node_holding_everything() {
    let (_nodes, _dir, _miroir, base, client) = start_cluster();
    let lone = TestNode::start(Some(NODE_KEY));
    let lone_client = reqwest::blocking::Client::new();
    let lone_call = |body: Value| -> (u16, Value) {
        let response = lone_client
            .post(format!("{}/multi-search", lone.url()))
            .bearer_auth(NODE_KEY)
            .json(&body)
            .send()
            .expect("the lone node answers");
        (response.status().as_u16(), response.json().unwrap_or(Value::Null))
    };
    let lone_load = |uid: &str, docs: &[Value]| {
        for (method, path, body) in [
            (reqwest::Method::POST, "/indexes".to_owned(), json!({"uid": uid, "primaryKey": "id"})),
            (reqwest::Method::PATCH, format!("/indexes/{uid}/settings"), facet_settings()),
            (reqwest::Method::POST, format!("/indexes/{uid}/documents"), json!(docs)),
        ] {
            let answer: Value = lone_client
                .request(method, format!("{}{path}", lone.url()))
                .bearer_auth(NODE_KEY)
                .json(&body)
                .send()
                .expect("the lone node answers")
                .json()
                .expect("json");
            let uid = answer["taskUid"].as_u64().expect("a task");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let task: Value = lone_client
                    .get(format!("{}/tasks/{uid}", lone.url()))
                    .bearer_auth(NODE_KEY)
                    .send()
                    .expect("task")
                    .json()
                    .expect("json");
                if task["status"] == "succeeded" {
                    break;
                }
                assert!(Instant::now() < deadline && task["status"] != "failed", "{task}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let first = overlapping_docs(240, 0);
    let second = overlapping_docs(90, 1000);
    for (uid, docs) in [("first", &first), ("second", &second)] {
        load_index(&client, &base, uid, docs);
        let settings = call(
            &client,
            &format!("{base}/indexes/{uid}/settings"),
            "PATCH",
            Some(facet_settings()),
        );
        wait_task(&client, &base, &settings);
        lone_load(uid, docs);
    }

    let requests = [
        json!({"federation": {"limit": 15}, "queries": [
            {"indexUid": "first", "q": "alpha"},
            {"indexUid": "first", "q": "bravo", "federationOptions": {"weight": 0.9}}]}),
        json!({"federation": {"limit": 12, "offset": 7}, "queries": [
            {"indexUid": "first", "q": "charlie delta"},
            {"indexUid": "second", "q": "charlie", "federationOptions": {"weight": 1.3}},
            {"indexUid": "first", "q": "charlie", "federationOptions": {"weight": 0.4}}]}),
        json!({"federation": {}, "queries": [
            {"indexUid": "second", "q": "echo"},
            {"indexUid": "second", "q": "echo foxtrot"}]}),
        json!({"federation": {"page": 2, "hitsPerPage": 5}, "queries": [
            {"indexUid": "first", "q": "alpha"},
            {"indexUid": "second", "q": "charlie"}]}),
        json!({"federation": {"hitsPerPage": 3}, "queries": [
            {"indexUid": "first", "q": "bravo"}]}),
        // Facets of each index over what its queries matched, then merged across indexes.
        json!({"federation": {"limit": 5, "facetsByIndex": {"first": ["word", "n"], "second": ["word"]}},
               "queries": [
            {"indexUid": "first", "q": "alpha"},
            {"indexUid": "first", "q": "bravo"},
            {"indexUid": "second", "q": "charlie"}]}),
        json!({"federation": {"facetsByIndex": {"first": ["word", "n"], "second": ["word", "n"]},
                              "mergeFacets": {"maxValuesPerFacet": 4}},
               "queries": [
            {"indexUid": "first", "q": "delta"},
            {"indexUid": "second", "q": "echo"}]}),
    ];
    for request in requests {
        let (status, miroir) =
            call(&client, &format!("{base}/multi-search"), "POST", Some(request.clone()));
        assert_eq!(status, 200, "{miroir}");
        let (status, one) = lone_call(request.clone());
        assert_eq!(status, 200, "{one}");
        let fields = [
            "estimatedTotalHits",
            "limit",
            "offset",
            "totalHits",
            "totalPages",
            "page",
            "hitsPerPage",
            "facetsByIndex",
            "facetDistribution",
            "facetStats",
        ];
        for field in fields {
            assert_eq!(miroir[field], one[field], "{field} of {request}");
        }
        assert_eq!(federated_hits(&miroir), federated_hits(&one), "hits of {request}");
        if request["federation"].get("facetsByIndex").is_some() {
            let words = if request["federation"].get("mergeFacets").is_some() {
                &miroir["facetDistribution"]["word"]
            } else {
                &miroir["facetsByIndex"]["first"]["distribution"]["word"]
            };
            assert!(
                words.as_object().is_some_and(|w| !w.is_empty()),
                "facets of {request}: {miroir}"
            );
        }
        let hit = &miroir["hits"][0];
        assert!(hit.get("_miroir_shard").is_none(), "bookkeeping leaked: {hit}");
    }
}

#[test]
fn multi_search_survives_a_stopped_node_when_a_replica_holds_its_shards() {
    let (mut nodes, _dir, _miroir, base, client) =
        start_cluster_configured("", "replication_factor: 2\n");
    load_index(&client, &base, "first", &overlapping_docs(240, 0));
    load_index(&client, &base, "second", &overlapping_docs(90, 1000));
    let requests = [
        json!({"federation": {"limit": 30}, "queries": [
            {"indexUid": "first", "q": "alpha"},
            {"indexUid": "second", "q": "bravo", "federationOptions": {"weight": 0.9}}]}),
        json!({"queries": [
            {"indexUid": "first", "q": "charlie", "limit": 30},
            {"indexUid": "second", "q": "delta", "limit": 30}]}),
    ];
    let before: Vec<Value> = requests
        .iter()
        .map(|r| call(&client, &format!("{base}/multi-search"), "POST", Some(r.clone())).1)
        .collect();
    drop(nodes.remove(1));
    for _ in 0..3 {
        for (request, expected) in requests.iter().zip(&before) {
            let (status, answer) =
                call(&client, &format!("{base}/multi-search"), "POST", Some(request.clone()));
            assert_eq!(status, 200, "{answer}");
            if request.get("federation").is_some() {
                assert_eq!(answer["estimatedTotalHits"], expected["estimatedTotalHits"]);
                assert_eq!(federated_hits(&answer), federated_hits(expected), "{request}");
            } else {
                for (got, want) in answer["results"]
                    .as_array()
                    .expect("results")
                    .iter()
                    .zip(expected["results"].as_array().expect("results"))
                {
                    assert_eq!(got["hits"], want["hits"], "{request}");
                    assert_eq!(got["estimatedTotalHits"], want["estimatedTotalHits"]);
                }
            }
        }
    }
}

#[test]
fn a_multi_search_past_its_timeout_answers_miroir_timeout_and_the_gateway_keeps_serving() {
    let (nodes, _dir, _miroir, base, client) =
        start_cluster_with(", query_timeout: 300ms, total_timeout: 2s");
    load_index(&client, &base, "slow", &overlapping_docs(60, 0));
    let plain = json!({"queries": [
        {"indexUid": "slow", "q": "alpha"}, {"indexUid": "slow", "q": "bravo"}]});
    let federated = json!({"federation": {}, "queries": [
        {"indexUid": "slow", "q": "alpha"}, {"indexUid": "slow", "q": "bravo"}]});

    // One slow node: every search needs it (8 shards over 3 nodes).
    nodes[1].set_search_delay(Duration::from_secs(3));
    let (status, error) =
        call(&client, &format!("{base}/multi-search"), "POST", Some(plain.clone()));
    assert_eq!(status, 504, "{error}");
    assert_eq!(error["code"], "miroir_timeout");
    assert_eq!(error["type"], "system");
    assert_eq!(error["link"], "https://docs.meilisearch.com/errors#miroir_timeout");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Inside `.queries[0]`: "), "{message}");
    assert!(message.contains("multi_search.query_timeout` (300 ms)"), "{message}");

    let (status, error) =
        call(&client, &format!("{base}/multi-search"), "POST", Some(federated.clone()));
    assert_eq!(status, 504, "{error}");
    assert_eq!(error["code"], "miroir_timeout");

    // The node is fast again: the same requests are served.
    nodes[1].set_search_delay(Duration::ZERO);
    let (status, answer) = call(&client, &format!("{base}/multi-search"), "POST", Some(plain));
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(&client, &format!("{base}/multi-search"), "POST", Some(federated));
    assert_eq!(status, 200, "{answer}");
}

/// Three nodes and `miroir serve` with `config` (the nodes section appended), an index `movies`
/// holding two documents.
fn start_with_config(config: &str) -> Cluster {
    let nodes: Vec<TestNode> = (0..3).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 4\n{config}{}",
        nodes_section(nodes.iter().map(TestNode::url))
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let created = call(
        &client,
        &format!("{base}/indexes"),
        "POST",
        Some(json!({"uid": "movies", "primaryKey": "id"})),
    );
    wait_task(&client, &base, &created);
    let docs = json!([{"id": 1, "title": "alpha"}, {"id": 2, "title": "beta"}]);
    let added = call(&client, &format!("{base}/indexes/movies/documents"), "POST", Some(docs));
    wait_task(&client, &base, &added);
    (nodes, dir, miroir, base, client)
}

#[test]
fn multi_search_answers_in_the_default_configuration() {
    // No `multi_search` section and no `plugins.dir`: the component is found where `make
    // plugins` builds it, beside the binary's target directory.
    plugins_dir("multi_search.wasm");
    let (_nodes, _dir, _miroir, base, client) = start_with_config("");
    let body = json!({"queries": [{"indexUid": "movies", "q": "alpha"}]});
    let (status, answer) = call(&client, &format!("{base}/multi-search"), "POST", Some(body));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["results"][0]["hits"][0]["title"], "alpha");
}

#[test]
fn a_default_multi_search_without_its_component_starts_and_names_the_flag() {
    let empty = tempfile::tempdir().expect("temp dir");
    let config = format!("plugins: {{ dir: \"{}\" }}\n", empty.path().display());
    let (_nodes, _dir, _miroir, base, client) = start_with_config(&config);
    let body = json!({"queries": [{"indexUid": "movies", "q": "alpha"}]});
    let (status, answer) = call(&client, &format!("{base}/multi-search"), "POST", Some(body));
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "miroir_plugin_unavailable");
    assert_eq!(answer["type"], "system");
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(message.contains("multi_search.enabled"), "{message}");
    // Searches are served meanwhile.
    let (status, _) =
        call(&client, &format!("{base}/indexes/movies/search"), "POST", Some(json!({})));
    assert_eq!(status, 200);
}

#[test]
fn an_explicit_multi_search_without_its_component_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("miroir.yaml");
    std::fs::write(
        &path,
        format!(
            "multi_search: {{ enabled: true }}\nplugins: {{ dir: \"{}\" }}\n{}",
            dir.path().join("none").display(),
            nodes_section(["http://127.0.0.1:1".to_owned()])
        ),
    )
    .expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_miroir"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("multi_search.enabled"), "{text}");
}
