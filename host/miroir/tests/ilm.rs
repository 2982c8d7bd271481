//! Index lifecycle (`ilm`) through `miroir serve` in front of development nodes: writes to a
//! pattern roll over to a new backing index at the document threshold, a search of the pattern
//! answers what one index holding every document answers, settings written to the pattern reach
//! every backing index, retention deletes the oldest, and a leader lost during a rollover leaves
//! exactly one new index.

use std::time::Duration;

use gateway::{json_of, nodes_section, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;
mod instances;

const KEY: &str = "ilm-master-key";
const NODE_KEY: &str = "ilm-node-key";

struct Cluster {
    _nodes: Vec<TestNode>,
    _dir: tempfile::TempDir,
    _miroir: Gateway,
    base: String,
    client: reqwest::blocking::Client,
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

impl Cluster {
    /// Two development nodes, four shards, `miroir serve` with the `ilm` section `ilm`.
    fn start(ilm: &str) -> Self {
        let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = format!(
            "metrics: {{ enabled: false }}\nshards: 4\nilm: {ilm}\n{}",
            nodes_section(nodes.iter().map(TestNode::url)),
        );
        let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
        let base = miroir.base.clone();
        Cluster { _nodes: nodes, _dir: dir, _miroir: miroir, base, client: client() }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = send(&self.client, method, &format!("{}{path}", self.base), KEY, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends a write and waits for its task; the task's index.
    fn write(&self, method: &str, path: &str, body: Value) -> String {
        let answer = send(&self.client, method, &format!("{}{path}", self.base), KEY, Some(body));
        let task = json_of(answer.clone());
        wait_task(&self.client, &self.base, KEY, answer);
        task["indexUid"].as_str().unwrap_or_default().to_owned()
    }

    fn write_index(&self, pattern: &str) -> String {
        let status = self.call("GET", "/_miroir/ilm", None).1;
        let policy = status["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .find(|p| p["pattern"] == pattern)
            .cloned();
        policy.expect("the policy")["writeIndex"].as_str().expect("write index").to_owned()
    }

    fn wait_write_index(&self, pattern: &str, index: &str) {
        wait_for(Duration::from_secs(30), &format!("{pattern} to roll over to {index}"), || {
            self.write_index(pattern) == index
        });
    }

    fn index_uids(&self) -> Vec<String> {
        let listed = self.call("GET", "/indexes?limit=100", None).1;
        let mut uids: Vec<String> = listed["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|i| i["uid"].as_str().expect("uid").to_owned())
            .collect();
        uids.sort();
        uids
    }
}

fn events(range: std::ops::Range<usize>) -> Value {
    let levels = ["info", "warn", "error"];
    let hosts = ["a", "b"];
    Value::Array(
        range
            .map(|i| {
                let word = if i % 4 == 0 { "disk failure" } else { "request served" };
                json!({"id": i, "level": levels[i % 3], "host": hosts[i % 2], "n": i,
                       "message": format!("event {i}: {word}")})
            })
            .collect(),
    )
}

fn search(cluster: &Cluster, index: &str, body: &Value) -> Value {
    let (status, answer) =
        cluster.call("POST", &format!("/indexes/{index}/search"), Some(body.clone()));
    assert_eq!(status, 200, "{index}: {answer}");
    answer
}

/// The parts of a search answer that must not depend on how the documents are split.
fn comparable(mut answer: Value) -> Value {
    let object = answer.as_object_mut().expect("an answer");
    object.remove("processingTimeMs");
    object.remove("indexUid");
    answer
}

#[test]
fn writes_roll_over_and_the_pattern_searches_like_one_index_holding_everything() {
    let cluster = Cluster::start(
        "{ check_interval: 200ms, policies: [{ pattern: logs, rollover: { max_documents: 10 } }] }",
    );
    // The same documents, in the same batches, to the pattern and to one ordinary index.
    assert_eq!(cluster.write("POST", "/indexes/logs/documents", events(0..12)), "logs-000001");
    cluster.write("POST", "/indexes/all/documents", events(0..12));
    let settings = json!({"filterableAttributes": ["level"], "sortableAttributes": ["n"]});
    assert_eq!(cluster.write("PATCH", "/indexes/logs/settings", settings.clone()), "logs-000001");
    cluster.write("PATCH", "/indexes/all/settings", settings);
    cluster.wait_write_index("logs", "logs-000002");
    assert_eq!(cluster.write("POST", "/indexes/logs/documents", events(12..24)), "logs-000002");
    cluster.write("POST", "/indexes/all/documents", events(12..24));
    cluster.wait_write_index("logs", "logs-000003");
    assert_eq!(cluster.write("POST", "/indexes/logs/documents", events(24..29)), "logs-000003");
    cluster.write("POST", "/indexes/all/documents", events(24..29));
    // Five documents stay under the threshold: no fourth index.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(cluster.index_uids(), ["all", "logs-000001", "logs-000002", "logs-000003"]);
    // The new backing indexes were created with the settings of the one before.
    let (_, copied) = cluster.call("GET", "/indexes/logs-000003/settings", None);
    assert_eq!(copied["filterableAttributes"], json!(["level"]), "{copied}");

    let searches = [
        json!({"q": ""}),
        json!({"q": "disk failure", "limit": 4, "offset": 1}),
        json!({"q": "event", "filter": "level = error", "facets": ["level"]}),
        json!({"q": "", "sort": ["n:desc"], "hitsPerPage": 7, "page": 2}),
        json!({"q": "served", "facets": ["level"], "limit": 0}),
    ];
    for body in &searches {
        let pattern = comparable(search(&cluster, "logs", body));
        let whole = comparable(search(&cluster, "all", body));
        assert_eq!(pattern, whole, "{body}");
    }
    let (status, facets) = cluster.call(
        "POST",
        "/indexes/logs/facet-search",
        Some(json!({"facetName": "level", "facetQuery": "e"})),
    );
    assert_eq!(status, 200, "{facets}");
    let (_, whole) = cluster.call(
        "POST",
        "/indexes/all/facet-search",
        Some(json!({"facetName": "level", "facetQuery": "e"})),
    );
    assert_eq!(facets["facetHits"], whole["facetHits"]);

    // Settings written to the pattern go to the index written to; the leader gives them to the
    // older backing indexes, so a filter on the new attribute covers every document.
    let settings = json!({"filterableAttributes": ["level", "host"], "sortableAttributes": ["n"]});
    assert_eq!(cluster.write("PATCH", "/indexes/logs/settings", settings.clone()), "logs-000003");
    cluster.write("PATCH", "/indexes/all/settings", settings);
    let body = json!({"q": "", "filter": "host = a", "sort": ["n:asc"], "limit": 50});
    wait_for(Duration::from_secs(30), "older backing indexes to get the new settings", || {
        let (status, answer) = cluster.call("POST", "/indexes/logs/search", Some(body.clone()));
        status == 200 && comparable(answer) == comparable(search(&cluster, "all", &body))
    });
    let (_, oldest) = cluster.call("GET", "/indexes/logs-000001/settings", None);
    let (_, whole) = cluster.call("GET", "/indexes/all/settings", None);
    assert_eq!(oldest["filterableAttributes"], whole["filterableAttributes"], "{oldest}");
}

#[test]
fn retention_deletes_backing_indexes_rolled_over_long_enough_ago() {
    let cluster = Cluster::start(
        "{ check_interval: 100ms, policies: [{ pattern: events, rollover: { max_documents: 5 }, \
         delete_after: 1s }] }",
    );
    cluster.write("POST", "/indexes/events/documents", events(0..6));
    cluster.wait_write_index("events", "events-000002");
    cluster.write("POST", "/indexes/events/documents", events(6..9));
    wait_for(Duration::from_secs(30), "events-000001 to be deleted", || {
        cluster.call("GET", "/indexes/events-000001", None).0 == 404
    });
    let status = cluster.call("GET", "/_miroir/ilm", None).1;
    let generations = &status["policies"][0]["indexes"];
    assert!(generations[0]["deleted_at_ms"].is_u64(), "{status}");
    assert!(generations[1]["deleted_at_ms"].is_null(), "{status}");
    let answer = search(&cluster, "events", &json!({"q": "", "limit": 20}));
    let ids: Vec<u64> = answer["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [6, 7, 8]);
    assert_eq!(answer["estimatedTotalHits"], 3);
}

#[test]
fn a_leader_lost_during_a_rollover_leaves_exactly_one_new_index() {
    let Some(redis) = instances::redis_url() else { return };
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = instances::fresh_prefix("ilm");
    let start = |name: &str| {
        let nodes = nodes_section(nodes.iter().map(TestNode::url));
        Gateway::start_whole(dir.path(), name, KEY, NODE_KEY, |port| {
            format!(
                "server: {{ bind: 127.0.0.1, port: {port} }}\nmetrics: {{ enabled: false }}\n\
                 shards: 4\nreplicas: 2\ninstance_id: {name}\n\
                 leader: {{ lease_ttl: 2s, renew_interval: 500ms }}\n\
                 task_store: {{ backend: redis, url: \"{redis}\", key_prefix: \"{prefix}\" }}\n\
                 ilm: {{ check_interval: 50ms, policies: [{{ pattern: logs, \
                 rollover: {{ max_documents: 5 }} }}] }}\n{nodes}"
            )
        })
    };
    let mut instances = [Some(start("a")), Some(start("b"))];
    let client = client();
    let leader_of = |gateway: &Gateway| {
        json_of(send(&client, "GET", &format!("{}/_miroir/leader", gateway.base), KEY, None))
    };
    let mut leader = None;
    wait_for(Duration::from_secs(30), "a leader", || {
        let a = leader_of(instances[0].as_ref().expect("a"));
        let b = leader_of(instances[1].as_ref().expect("b"));
        leader = match (&a["is_leader"], &b["is_leader"]) {
            (Value::Bool(true), Value::Bool(false)) => Some(0),
            (Value::Bool(false), Value::Bool(true)) => Some(1),
            _ => None,
        };
        leader.is_some()
    });
    let leader = leader.expect("a leader");
    let follower = 1 - leader;
    let base = instances[follower].as_ref().expect("follower").base.clone();
    let call = |method: &str, path: &str, body: Option<Value>| {
        send(&client, method, &format!("{base}{path}"), KEY, body)
    };
    wait_task(&client, &base, KEY, call("POST", "/indexes/logs/documents", Some(events(0..6))));
    wait_task(
        &client,
        &base,
        KEY,
        call("PATCH", "/indexes/logs/settings", Some(json!({"filterableAttributes": ["level"]}))),
    );
    // The moment the next index exists, its leader dies (recorded or not yet).
    wait_for(Duration::from_secs(30), "logs-000002 to be created", || {
        call("GET", "/indexes/logs-000002", None).0 == 200
    });
    instances[leader] = None;
    // The other instance takes over and finishes the rollover: one new index, configured.
    wait_for(Duration::from_secs(30), "the survivor to write to logs-000002", || {
        let status = json_of(call("GET", "/_miroir/ilm", None));
        status["policies"][0]["writeIndex"] == "logs-000002"
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while json_of(call("GET", "/indexes/logs-000002/settings", None))["filterableAttributes"]
        != json!(["level"])
    {
        if std::time::Instant::now() > deadline {
            let survivor = ["a", "b"][follower];
            let log = std::fs::read_to_string(dir.path().join(format!("{survivor}.log")));
            let status = json_of(call("GET", "/_miroir/ilm", None));
            panic!("logs-000002 never got the settings; {status}\n{}", log.unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let listed = json_of(call("GET", "/indexes", None));
    let uids: Vec<&str> = listed["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|i| i["uid"].as_str())
        .collect();
    assert_eq!(uids, ["logs-000001", "logs-000002"], "{listed}");
    let status = json_of(call("GET", "/_miroir/ilm", None));
    assert_eq!(status["policies"][0]["indexes"].as_array().expect("indexes").len(), 2, "{status}");
    let task = json_of(call("POST", "/indexes/logs/documents", Some(events(6..8))));
    assert_eq!(task["indexUid"], "logs-000002", "{task}");
}
