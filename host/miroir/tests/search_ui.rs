//! The search page (`search_ui`) through `miroir serve` in front of development nodes: the page
//! and its searches are served without the client presenting a key (the page's own search key
//! is used, and never shown), each client IP gets its bucket (429 `miroir_rate_limited` with
//! `Retry-After`, `X-Forwarded-For` believed only from a trusted proxy), two instances on one
//! Redis share one bucket, and a visitor in a real browser (headless Chromium) types, filters
//! and pages.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gateway::{json_of, nodes_section, send, wait_task, Gateway};
use miroir_devnode::testing::TestNode;
use serde_json::{json, Value};

mod gateway;
mod instances;

const KEY: &str = "search-ui-master-key";
const NODE_KEY: &str = "search-ui-node-key";

/// Two development nodes holding `products` (120 documents over 8 shards, `brand` and `color`
/// filterable, `price` sortable) and a key allowed only to search; the key's value.
fn products(nodes: &[TestNode], dir: &Path) -> String {
    let config =
        format!("metrics: {{ enabled: false }}\nshards: 8\n{}", nodes_section(urls(nodes)));
    let miroir = Gateway::start_whole(dir, "setup", KEY, NODE_KEY, |port| {
        format!("server: {{ bind: 127.0.0.1, port: {port} }}\ntask_store: {{ path: miroir.db }}\n{config}")
    });
    let client = client();
    let call = |method: &str, path: &str, body: Option<Value>| {
        send(&client, method, &format!("{}{path}", miroir.base), KEY, body)
    };
    wait_task(
        &client,
        &miroir.base,
        KEY,
        call("POST", "/indexes", Some(json!({"uid": "products", "primaryKey": "id"}))),
    );
    let settings =
        json!({"filterableAttributes": ["brand", "color"], "sortableAttributes": ["price"]});
    wait_task(
        &client,
        &miroir.base,
        KEY,
        call("PATCH", "/indexes/products/settings", Some(settings)),
    );
    let brands = ["acme", "bolt", "zenith"];
    let colors = ["red", "blue"];
    let docs: Vec<Value> = (0..120)
        .map(|i| {
            let kind = if i % 2 == 0 { "phone" } else { "laptop" };
            json!({"id": i, "title": format!("{kind} model {i}"), "brand": brands[i % 3],
                   "color": colors[i % 2], "price": 100 + i})
        })
        .collect();
    wait_task(
        &client,
        &miroir.base,
        KEY,
        call("POST", "/indexes/products/documents", Some(Value::Array(docs))),
    );
    let key = json_of(call(
        "POST",
        "/keys",
        Some(json!({"actions": ["search"], "indexes": ["products"], "expiresAt": null})),
    ));
    key["key"].as_str().expect("a key").to_owned()
}

fn urls(nodes: &[TestNode]) -> Vec<String> {
    nodes.iter().map(TestNode::url).collect()
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client")
}

/// `miroir serve` on `nodes` (SQLite store in `dir`, kept from the setup) with the search page.
fn with_page(dir: &Path, nodes: &[TestNode], search_ui: &str) -> Gateway {
    let config =
        format!("metrics: {{ enabled: false }}\nshards: 8\n{}", nodes_section(urls(nodes)));
    Gateway::start_whole(dir, "miroir", KEY, NODE_KEY, |port| {
        format!(
            "server: {{ bind: 127.0.0.1, port: {port} }}\ntask_store: {{ path: miroir.db }}\n\
             search_ui: {search_ui}\n{config}"
        )
    })
}

/// A request without `Authorization`, with optional `X-Forwarded-For`.
fn anonymous(
    method: &str,
    url: &str,
    body: Option<Value>,
    forwarded_for: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request =
        client().request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url);
    if let Some(address) = forwarded_for {
        request = request.header("X-Forwarded-For", address);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().expect("an answer");
    let status = response.status().as_u16();
    let retry =
        response.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned());
    let text = response.text().expect("body");
    (status, retry, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn ids(answer: &Value) -> Vec<u64> {
    answer["hits"].as_array().expect("hits").iter().map(|h| h["id"].as_u64().expect("id")).collect()
}

#[test]
fn the_page_searches_with_its_own_key_and_limits_each_client() {
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let search_key = products(&nodes, dir.path());
    let ui = format!(
        "{{ enabled: true, api_key: \"{search_key}\", trusted_proxies: [\"127.0.0.1\"], \
         rate_limit: {{ per_ip: 0.05, burst: 6 }} }}"
    );
    let miroir = with_page(dir.path(), &nodes, &ui);
    let page_url = format!("{}/_miroir/ui", miroir.base);

    // The page is open, names its base, and carries neither key.
    let (status, _, page) = anonymous("GET", &page_url, None, Some("198.51.100.1"));
    assert_eq!(status, 200);
    let page = page.as_str().expect("html").to_owned();
    assert!(page.contains("data-base=\"/_miroir/ui\""), "{page}");
    assert!(!page.contains(&search_key) && !page.contains(KEY));

    // The indexes the key may search, with what the page builds filters and sorts from.
    let (status, _, listed) =
        anonymous("GET", &format!("{page_url}/api/indexes"), None, Some("198.51.100.1"));
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["results"],
        json!([{"uid": "products", "primaryKey": "id", "filterableAttributes": ["brand", "color"],
                "sortableAttributes": ["price"]}])
    );

    // A search through the page answers what the same search with the key answers.
    let search = json!({"q": "phone", "filter": [["brand = \"acme\""]], "sort": ["price:desc"], "hitsPerPage": 5});
    let (status, _, through_page) = anonymous(
        "POST",
        &format!("{page_url}/api/indexes/products/search"),
        Some(search.clone()),
        Some("198.51.100.1"),
    );
    assert_eq!(status, 200, "{through_page}");
    let direct = json_of(send(
        &client(),
        "POST",
        &format!("{}/indexes/products/search", miroir.base),
        &search_key,
        Some(search),
    ));
    assert_eq!(ids(&through_page), ids(&direct));
    assert_eq!(through_page["totalHits"], direct["totalHits"]);
    assert_eq!(ids(&through_page), [114, 108, 102, 96, 90]);

    // The key only searches: an index it may not search is refused as the key would be.
    let (status, _, refused) = anonymous(
        "POST",
        &format!("{page_url}/api/indexes/other/search"),
        Some(json!({})),
        Some("198.51.100.2"),
    );
    assert_eq!((status, &refused["code"]), (403, &json!("invalid_api_key")), "{refused}");

    // 198.51.100.1 used 3 of its 6 requests; 3 more pass, then it waits.
    for _ in 0..3 {
        assert_eq!(anonymous("GET", &page_url, None, Some("198.51.100.1")).0, 200);
    }
    let (status, retry, limited) = anonymous("GET", &page_url, None, Some("198.51.100.1"));
    assert_eq!(status, 429, "{limited}");
    assert_eq!(limited["code"], "miroir_rate_limited");
    assert_eq!(limited["type"], "invalid_request");
    let retry: u64 = retry.expect("Retry-After").parse().expect("seconds");
    assert!((1..=20).contains(&retry), "{retry}");
    // Another client behind the trusted proxy has its own bucket.
    assert_eq!(anonymous("GET", &page_url, None, Some("198.51.100.3")).0, 200);
    // A client cannot pick a bucket by writing the header itself: the proxy appends the address
    // it saw, and that one counts.
    assert_eq!(anonymous("GET", &page_url, None, Some("203.0.113.50, 198.51.100.1")).0, 429);
    // Meilisearch's own routes are not limited, and still need a key.
    assert_eq!(send(&client(), "GET", &format!("{}/indexes", miroir.base), KEY, None).0, 200);
    assert_eq!(anonymous("GET", &format!("{}/indexes", miroir.base), None, None).0, 401);
}

#[test]
fn two_instances_on_one_redis_share_one_bucket_per_client() {
    let Some(redis) = instances::redis_url() else { return };
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = instances::fresh_prefix("search-ui");
    let start = |name: &str| {
        let nodes = nodes_section(urls(&nodes));
        Gateway::start_whole(dir.path(), name, KEY, NODE_KEY, |port| {
            format!(
                "server: {{ bind: 127.0.0.1, port: {port} }}\nmetrics: {{ enabled: false }}\n\
                 replicas: 2\ninstance_id: {name}\n\
                 task_store: {{ backend: redis, url: \"{redis}\", key_prefix: \"{prefix}\" }}\n\
                 search_ui: {{ enabled: true, api_key: \"any\", \
                 rate_limit: {{ per_ip: 0.1, burst: 4, backend: redis }} }}\n{nodes}"
            )
        })
    };
    let (a, b) = (start("a"), start("b"));
    let mut passed = 0;
    let mut limited_by = [false, false];
    for i in 0..10 {
        let instance = if i % 2 == 0 { &a } else { &b };
        let (status, retry, _) =
            anonymous("GET", &format!("{}/_miroir/ui/app.css", instance.base), None, None);
        if status == 429 {
            assert!(retry.is_some(), "429 without Retry-After");
            limited_by[i % 2] = true;
        } else {
            assert_eq!(status, 200);
            passed += 1;
        }
    }
    // One bucket of 4 for the client across both instances (local buckets would let 8 pass).
    assert_eq!(passed, 4, "requests let through by the two instances together");
    assert_eq!(limited_by, [true, true]);
}

/// Where Chromium and its WebDriver are: required in CI, the test is skipped elsewhere.
fn browser_available() -> bool {
    let found = |name: &str, var: &str| {
        std::env::var_os(var).is_some()
            || Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .is_ok_and(|o| o.status.success())
    };
    let ready = found("chromium", "MIROIR_TEST_CHROMIUM")
        && found("chromedriver", "MIROIR_TEST_CHROMEDRIVER")
        && Command::new("python3")
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ready && std::env::var_os("CI").is_some() {
        panic!("chromium, chromedriver and the selenium module are needed in CI");
    }
    if !ready {
        eprintln!("chromium, chromedriver or selenium missing: browser test skipped");
    }
    ready
}

#[test]
fn a_visitor_types_filters_and_pages_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let nodes: Vec<TestNode> = (0..2).map(|_| TestNode::start(Some(NODE_KEY))).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let search_key = products(&nodes, dir.path());
    let ui = format!(
        "{{ enabled: true, api_key: \"{search_key}\", rate_limit: {{ per_ip: 50, burst: 100 }} }}"
    );
    let miroir = with_page(dir.path(), &nodes, &ui);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/search_ui.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([&format!("{}/_miroir/ui", miroir.base), "laptop", "brand", "bolt"])
        .output()
        .expect("run the browser script");
    assert!(
        output.status.success(),
        "browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let steps: Value = serde_json::from_slice(&output.stdout).expect("the script's JSON");

    // What the API answers for the same searches, with the page's key.
    let api = |body: Value| {
        json_of(send(
            &client(),
            "POST",
            &format!("{}/indexes/products/search", miroir.base),
            &search_key,
            Some(body),
        ))
    };
    let total = |answer: &Value| format!("{} results", answer["totalHits"]);
    let opened = api(json!({"q": "", "hitsPerPage": 10}));
    assert!(
        steps["opened"]["total"].as_str().expect("text").starts_with(&total(&opened)),
        "{steps}"
    );
    assert_eq!(steps["opened"]["titles"].as_array().expect("titles").len(), 10);

    let typed = api(json!({"q": "laptop", "hitsPerPage": 10}));
    assert!(steps["typed"]["total"].as_str().expect("text").starts_with(&total(&typed)), "{steps}");
    assert!(
        steps["typed"]["marks"]
            .as_array()
            .expect("marks")
            .iter()
            .all(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case("laptop"))),
        "{steps}"
    );

    let filtered = api(json!({"q": "laptop", "filter": [["brand = \"bolt\""]], "hitsPerPage": 10}));
    assert!(
        steps["filtered"]["total"].as_str().expect("text").starts_with(&total(&filtered)),
        "{steps}"
    );
    let titles = |answer: &Value| -> Vec<Value> {
        answer["hits"].as_array().expect("hits").iter().map(|h| h["title"].clone()).collect()
    };
    assert_eq!(steps["filtered"]["titles"], Value::Array(titles(&filtered)), "{steps}");

    let second =
        api(json!({"q": "laptop", "filter": [["brand = \"bolt\""]], "hitsPerPage": 10, "page": 2}));
    assert_eq!(steps["paged"]["page"], "2");
    assert_eq!(steps["paged"]["titles"], Value::Array(titles(&second)), "{steps}");
    assert!(!titles(&second).is_empty(), "page 2 has hits: {second}");
}
