//! The background loops of `miroir serve` over real development nodes: the leader's settings
//! drift check repairs a node changed behind Miroir's back, the health prober drives
//! `/_miroir/ready`, and plugins declaring `tick` are called on their timer.

use std::time::Duration;

use gateway::{json_of, nodes_section, plugins_dir, send, wait_for, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::json;

mod gateway;

const KEY: &str = "background-master-key";
const NODE_KEY: &str = "background-node-key";

#[test]
fn the_leader_repairs_drifted_settings_and_readiness_follows_the_nodes() {
    let mut nodes: Vec<Option<TestNode>> =
        (0..3).map(|_| Some(TestNode::start(Some(NODE_KEY)))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "metrics: {{ enabled: false }}\nshards: 8\n\
         rebalancer: {{ drift_check_interval: 300ms }}\n\
         health: {{ interval: 150ms, timeout: 100ms, down_after: 2 }}\n{}",
        nodes_section(nodes.iter().map(|n| n.as_ref().expect("node").url())),
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let base = miroir.base.clone();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    wait_for(Duration::from_secs(30), "this instance to lead", || {
        json_of(send(&client, "GET", &format!("{base}/_miroir/leader"), KEY, None))["is_leader"]
            == true
    });

    // Only the master key is configured: it guards every admin route. Every route goes through
    // the one request stack, which numbers each answer.
    for path in ["/_miroir/leader", "/_miroir/metrics", "/_miroir/topology"] {
        let anonymous = client.get(format!("{base}{path}")).send().expect("answer");
        assert_eq!(anonymous.status(), 401, "{path} without a key");
        assert!(anonymous.headers().contains_key("x-request-id"), "{path}: through the stack");
        assert_eq!(send(&client, "GET", &format!("{base}{path}"), "wrong", None).0, 401);
        let answered = client.get(format!("{base}{path}")).bearer_auth(KEY).send().expect("answer");
        assert_eq!(answered.status(), 200, "{path}");
        assert!(answered.headers().contains_key("x-request-id"), "{path}: through the stack");
    }
    wait_for(Duration::from_secs(5), "miroir_is_leader to say so", || {
        let metrics = send(&client, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;
        metrics.lines().any(|l| l == "miroir_is_leader 1")
    });

    let created =
        send(&client, "POST", &format!("{base}/indexes"), KEY, Some(json!({"uid": "books"})));
    wait_task(&client, &base, KEY, created);
    let patched = send(
        &client,
        "PATCH",
        &format!("{base}/indexes/books/settings"),
        KEY,
        Some(json!({"synonyms": {"sf": ["science fiction"]}, "stopWords": ["the"]})),
    );
    wait_task(&client, &base, KEY, patched);
    let node_url = |i: usize| nodes[i].as_ref().expect("node").url();
    let settings_of = |i: usize| {
        json_of(send(
            &client,
            "GET",
            &format!("{}/indexes/books/settings", node_url(i)),
            NODE_KEY,
            None,
        ))
    };
    let expected = settings_of(0);
    assert_eq!(settings_of(2), expected);

    // An operator changes node 2 directly; the leader's drift check puts it back.
    let direct = send(
        &client,
        "PATCH",
        &format!("{}/indexes/books/settings", node_url(2)),
        NODE_KEY,
        Some(json!({"synonyms": {}, "rankingRules": ["words", "sort"]})),
    );
    assert_eq!(direct.0, 202, "{}", direct.1);
    let node_task = json_of(direct)["taskUid"].as_u64().expect("node task");
    wait_for(Duration::from_secs(20), "node 2 to apply the direct change", || {
        let task = json_of(send(
            &client,
            "GET",
            &format!("{}/tasks/{node_task}", node_url(2)),
            NODE_KEY,
            None,
        ));
        task["status"] == "succeeded"
    });
    wait_for(Duration::from_secs(20), "node 2's settings to be repaired", || {
        settings_of(2) == expected
    });
    let metrics = send(&client, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;
    let repairs = metrics
        .lines()
        .find_map(|l| l.strip_prefix("miroir_settings_drift_repairs_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("the repairs counter");
    assert!(repairs >= 1.0, "{repairs}");

    // Readiness follows the prober: node 1 stops, its shards have no replica (RF 1).
    let ready = client.get(format!("{base}/_miroir/ready")).send().expect("ready");
    assert_eq!(ready.status(), 200);
    nodes[1] = None;
    wait_for(Duration::from_secs(20), "readiness to fail", || {
        client.get(format!("{base}/_miroir/ready")).send().expect("ready").status() == 503
    });

    // A search now misses node 1's shards; the metrics say so.
    let search = client
        .post(format!("{base}/indexes/books/search"))
        .bearer_auth(KEY)
        .json(&json!({"q": ""}))
        .send()
        .expect("search");
    assert_eq!(search.status(), 200);
    assert!(search.headers().contains_key("x-miroir-degraded"));
    let metrics = send(&client, "GET", &format!("{base}/_miroir/metrics"), KEY, None).1;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} not in the metrics:\n{metrics}"))
    };
    assert_eq!(value("miroir_node_health{group=\"g\",node=\"n0\"} "), 1.0);
    assert_eq!(value("miroir_node_health{group=\"g\",node=\"n1\"} "), 0.0);
    assert_eq!(value("miroir_scatter_partial_responses_total "), 1.0);
    assert!(value("miroir_scatter_node_requests_total ") >= 2.0);
    let searches = "miroir_request_duration_seconds_count\
                    {method=\"POST\",route=\"/indexes/{uid}/search\",status=\"200\"} ";
    assert_eq!(value(searches), 1.0, "requests are timed by route template");
}

#[test]
fn plugins_declaring_tick_are_ticked_by_the_running_gateway() {
    let node = TestNode::start(Some(NODE_KEY));
    let dir = tempfile::tempdir().expect("temp dir");
    let component = plugins_dir("test_hooks.wasm").join("test_hooks.wasm");
    let config = format!(
        "metrics: {{ enabled: false }}\n\
         plugins: {{ tick_interval_ms: 50, custom: [{{ name: hooks, component: \"{}\" }}] }}\n{}",
        component.display(),
        nodes_section([node.url()]),
    );
    let miroir = Gateway::start(dir.path(), &config, KEY, NODE_KEY);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let ticks = || {
        let events = json_of(send(
            &client,
            "GET",
            &format!("{}/_miroir/x/test/events", miroir.base),
            KEY,
            None,
        ));
        events.as_array().map_or(0, |e| e.iter().filter(|e| e["hook"] == "tick").count())
    };
    wait_for(Duration::from_secs(20), "three ticks", || ticks() >= 3);
    let seen = ticks();
    wait_for(Duration::from_secs(20), "more ticks", || ticks() > seen);
}
