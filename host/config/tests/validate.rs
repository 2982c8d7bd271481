//! `Config::validate`: every rule, and every problem reported at once with its key path.
//!
//! These tests build configurations in code, so they touch neither the environment nor the
//! working directory.

use std::path::PathBuf;

use miroir_config::{
    Config, ConfigError, CustomPlugin, HumanDuration, IlmPolicy, NatsSink, NodeConfig,
    OtlpProtocol, Problem, RateLimitBackend, RolloverConditions, Secret, Secrets, ShadowTarget,
    TaskStoreBackend, WebhookSink,
};
use miroir_types::{GroupId, NodeId};

fn node(id: &str, port: u16, group: Option<&str>) -> NodeConfig {
    NodeConfig {
        id: NodeId::new(id).expect("valid id"),
        address: format!("http://127.0.0.1:{port}"),
        replica_group: group.map(|g| GroupId::new(g).expect("valid group")),
    }
}

/// Two groups: `a` with three nodes, `b` with two.
fn valid() -> Config {
    Config {
        nodes: vec![
            node("a0", 7701, Some("a")),
            node("a1", 7702, Some("a")),
            node("a2", 7703, Some("a")),
            node("b0", 7711, Some("b")),
            node("b1", 7712, Some("b")),
        ],
        ..Config::default()
    }
}

fn problems(config: &Config) -> Vec<Problem> {
    match config.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("unexpected {other}"),
    }
}

/// Asserts that the only problem is at `path`, and returns it.
fn only(config: &Config, path: &str) -> Problem {
    let problems = problems(config);
    assert_eq!(problems.len(), 1, "expected one problem at {path}: {problems:#?}");
    assert_eq!(problems[0].path, path, "{problems:#?}");
    assert!(!problems[0].hint.is_empty(), "{problems:#?}");
    problems[0].clone()
}

fn custom(name: &str, component: PathBuf, enabled: bool) -> CustomPlugin {
    CustomPlugin {
        name: name.to_owned(),
        component,
        enabled,
        deadline_ms: None,
        memory_mb: None,
        config: serde_json::json!({}),
    }
}

#[test]
fn a_valid_config_passes() {
    assert_eq!(problems(&valid()), []);
    assert_eq!(
        valid().summary(),
        "5 nodes in 2 replica groups, 64 shards, RF 1, task store sqlite (miroir.db)"
    );
}

#[test]
fn port_zero_is_refused() {
    let mut config = valid();
    config.server.port = 0;
    only(&config, "server.port");
}

#[test]
fn max_body_bytes_zero_is_refused() {
    let mut config = valid();
    config.server.max_body_bytes = 0;
    only(&config, "server.max_body_bytes");
}

#[test]
fn zero_concurrency_and_zero_timeouts_are_refused() {
    let mut config = valid();
    config.server.max_concurrent_requests = 0;
    config.server.request_timeout = HumanDuration::from_secs(0);
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["server.max_concurrent_requests", "server.request_timeout"]);
}

#[test]
fn an_empty_node_list_is_refused() {
    let config = Config::default();
    only(&config, "nodes");
}

#[test]
fn a_node_without_a_group_is_refused() {
    let mut config = valid();
    config.nodes.push(node("loner", 7720, None));
    let problem = only(&config, "nodes[5].replica_group");
    assert!(problem.message.contains("`loner`"), "{problem:?}");
}

#[test]
fn duplicate_node_ids_are_refused() {
    let mut config = valid();
    config.nodes.push(node("a1", 7720, Some("b")));
    let problem = only(&config, "nodes[5].id");
    assert!(problem.message.contains("nodes[1]"), "{problem:?}");
}

#[test]
fn duplicate_node_addresses_are_refused() {
    let mut config = valid();
    config.nodes.push(node("c0", 7701, Some("b")));
    only(&config, "nodes[5].address");
}

#[test]
fn node_addresses_must_be_http_urls() {
    let mut config = valid();
    config.nodes[0].address = "127.0.0.1:7701".to_owned();
    config.nodes[1].address = "ftp://host".to_owned();
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["nodes[0].address", "nodes[1].address"]);
}

#[test]
fn replication_factor_zero_is_refused() {
    let mut config = valid();
    config.replication_factor = 0;
    only(&config, "replication_factor");
}

#[test]
fn replication_factor_larger_than_the_smallest_group_is_refused() {
    let mut config = valid();
    config.replication_factor = 3;
    let problem = only(&config, "replication_factor");
    assert!(problem.message.contains("group `b`, which has 2 nodes"), "{problem:?}");
    assert!(problem.hint.contains("at most 2"), "{problem:?}");
    config.replication_factor = 2;
    assert_eq!(problems(&config), []);
}

#[test]
fn shard_count_must_be_positive() {
    let mut config = valid();
    config.shards = 0;
    only(&config, "shards");
}

#[test]
fn several_replicas_on_sqlite_are_refused() {
    let mut config = valid();
    config.replicas = 2;
    let problem = only(&config, "task_store.backend");
    assert!(problem.message.contains("require Redis"), "{problem:?}");
    config.task_store.backend = TaskStoreBackend::Redis;
    config.task_store.url = Some("redis://127.0.0.1:6379".to_owned());
    assert_eq!(problems(&config), []);
}

#[test]
fn zero_replicas_is_refused() {
    let mut config = valid();
    config.replicas = 0;
    only(&config, "replicas");
}

#[test]
fn redis_needs_a_url() {
    let mut config = valid();
    config.task_store.backend = TaskStoreBackend::Redis;
    only(&config, "task_store.url");
    config.task_store.url = Some("http://redis:6379".to_owned());
    only(&config, "task_store.url");
}

#[test]
fn an_enabled_first_party_plugin_needs_its_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = valid();
    config.plugins.dir = dir.path().to_owned();
    config.vector_search.enabled = true;
    let problem = only(&config, "vector_search.enabled");
    assert!(problem.message.contains("vector_search.wasm"), "{problem:?}");
    std::fs::write(dir.path().join("vector_search.wasm"), b"").expect("write component");
    assert_eq!(problems(&config), []);
}

#[test]
fn a_disabled_plugin_needs_no_component() {
    let mut config = valid();
    config.plugins.dir = PathBuf::from("/nonexistent/miroir/plugins");
    config.plugins.custom.push(custom("off", PathBuf::from("/nonexistent/off.wasm"), false));
    assert_eq!(problems(&config), []);
}

#[test]
fn an_enabled_custom_plugin_needs_its_component() {
    let mut config = valid();
    config.plugins.custom.push(custom("top-facets", PathBuf::from("/nonexistent/top.wasm"), true));
    let problem = only(&config, "plugins.custom[0].component");
    assert!(problem.message.contains("top-facets"), "{problem:?}");
}

#[test]
fn custom_plugin_names_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let component = dir.path().join("p.wasm");
    std::fs::write(&component, b"").expect("write component");
    let mut config = valid();
    config.plugins.custom = vec![
        custom("Bad Name", component.clone(), true),
        custom("cdc", component.clone(), true),
        custom("ok", component.clone(), true),
        custom("ok", component, true),
    ];
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        ["plugins.custom[0].name", "plugins.custom[1].name", "plugins.custom[3].name"]
    );
}

#[test]
fn plugin_limits_must_be_positive() {
    let mut config = valid();
    config.plugins.deadline_ms = 0;
    config.plugins.memory_mb = 1 << 20;
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["plugins.deadline_ms", "plugins.memory_mb"]);
}

#[test]
fn the_lease_must_outlive_its_renewal() {
    let mut config = valid();
    config.leader.renew_interval = HumanDuration::from_secs(30);
    only(&config, "leader.renew_interval");
}

#[test]
fn a_health_probe_must_end_before_the_next() {
    let mut config = valid();
    config.health.timeout = HumanDuration::from_secs(5);
    only(&config, "health.timeout");
    config.health.timeout = HumanDuration::from_secs(1);
    config.health.down_after = 0;
    only(&config, "health.down_after");
    config.health.down_after = 2;
    config.health.degraded_after = 3;
    only(&config, "health.down_after");
}

#[test]
fn telemetry_values_are_checked() {
    let mut config = valid();
    config.telemetry.sampling_ratio = 1.5;
    config.telemetry.log_level = "loud".to_owned();
    config.telemetry.otlp_endpoint = Some("collector:4317".to_owned());
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        ["telemetry.log_level", "telemetry.otlp_endpoint", "telemetry.sampling_ratio"]
    );
    config.telemetry = Default::default();
    config.telemetry.log_level = "info,miroir=debug,hyper=warn".to_owned();
    assert_eq!(problems(&config), []);
}

#[test]
fn a_grpc_endpoint_names_no_path() {
    let mut config = valid();
    config.telemetry.otlp_protocol = Some(OtlpProtocol::Grpc);
    config.telemetry.otlp_endpoint = Some("http://collector:4317/v1/traces".to_owned());
    only(&config, "telemetry.otlp_endpoint");
    config.telemetry.otlp_endpoint = Some("http://collector:4317".to_owned());
    assert_eq!(problems(&config), []);
    // A path is fine over HTTP, where it names the traces URL.
    config.telemetry.otlp_protocol = Some(OtlpProtocol::Http);
    config.telemetry.otlp_endpoint = Some("http://collector:4318/otlp/v1/traces".to_owned());
    assert_eq!(problems(&config), []);
}

#[test]
fn metrics_need_their_own_port() {
    let mut config = valid();
    config.metrics.port = config.server.port;
    only(&config, "metrics.port");
    config.metrics.enabled = false;
    assert_eq!(problems(&config), []);
}

#[test]
fn session_pinning_limits_are_checked_when_enabled() {
    let mut config = valid();
    config.session_pinning.max_sessions = 0;
    only(&config, "session_pinning.max_sessions");
    config.session_pinning.enabled = false;
    assert_eq!(problems(&config), []);
}

/// Enables a first-party plugin with its component present, so only its settings are judged.
fn with_component(config: &mut Config, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(format!("{name}.wasm")), b"").expect("write component");
    config.plugins.dir = dir.path().to_owned();
    dir
}

#[test]
fn shadowing_needs_targets_and_a_rate_between_zero_and_one() {
    let mut config = valid();
    config.shadow.enabled = true;
    config.shadow.sample_rate = 2.0;
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["shadow.sample_rate", "shadow.targets"]);
    config.shadow.sample_rate = 0.1;
    config.shadow.targets = vec![ShadowTarget {
        name: "staging".to_owned(),
        address: "http://127.0.0.1:7800".to_owned(),
        api_key_env: None,
    }];
    assert_eq!(problems(&config), []);
}

#[test]
fn change_capture_needs_a_sink() {
    let mut config = valid();
    config.cdc.enabled = true;
    config.cdc.sinks.queue.enabled = false;
    only(&config, "cdc.sinks");
    config.cdc.sinks.webhook = Some(WebhookSink {
        url: "not a url".to_owned(),
        batch_size: 100,
        max_retries: 5,
        timeout: HumanDuration::from_secs(5),
    });
    only(&config, "cdc.sinks.webhook.url");
    config.cdc.sinks.webhook = None;
    config.cdc.sinks.nats = Some(NatsSink {
        url: "http://127.0.0.1:4222".to_owned(),
        subject_prefix: "miroir.changes".to_owned(),
        stream: "MIROIR_CHANGES".to_owned(),
    });
    only(&config, "cdc.sinks.nats.url");
    config.cdc.sinks.nats = Some(NatsSink {
        url: "nats://127.0.0.1:4222".to_owned(),
        subject_prefix: "miroir.>".to_owned(),
        stream: "MIROIR_CHANGES".to_owned(),
    });
    only(&config, "cdc.sinks.nats.subject_prefix");
}

#[test]
fn multi_search_and_vector_search_limits_are_checked() {
    let mut config = valid();
    let dir = with_component(&mut config, "multi_search");
    std::fs::write(dir.path().join("vector_search.wasm"), b"").expect("write component");
    config.multi_search.enabled = true;
    config.multi_search.max_queries_per_batch = 0;
    config.vector_search.enabled = true;
    config.vector_search.over_fetch_factor = 0;
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["multi_search.max_queries_per_batch", "vector_search.over_fetch_factor"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut config = valid();
    config.server.port = 0;
    config.server.max_body_bytes = 0;
    config.replication_factor = 5;
    config.replicas = 3;
    config.nodes.push(node("a0", 7799, None));
    let paths: Vec<_> = problems(&config).into_iter().map(|p| p.path).collect();
    assert_eq!(
        paths,
        [
            "server.port",
            "server.max_body_bytes",
            "nodes[5].id",
            "nodes[5].replica_group",
            "replication_factor",
            "task_store.backend",
        ]
    );
}

#[test]
fn instance_ids_are_checked() {
    let mut config = valid();
    config.instance_id = Some("pod 1".to_owned());
    only(&config, "instance_id");
}

/// A config with the search page on, a search key, and `replicas` instances on Redis.
fn with_search_page(replicas: u32) -> Config {
    let mut config = valid();
    config.search_ui.enabled = true;
    config.search_ui.api_key = Some("a-search-key".to_owned());
    if replicas > 1 {
        config.replicas = replicas;
        config.task_store.backend = TaskStoreBackend::Redis;
        config.task_store.url = Some("redis://redis:6379/0".to_owned());
    }
    config
}

#[test]
fn the_search_page_needs_its_own_search_key() {
    assert_eq!(problems(&with_search_page(1)), Vec::new());
    let mut config = with_search_page(1);
    config.search_ui.api_key = None;
    only(&config, "search_ui.api_key");
    config.search_ui.api_key = Some("the-master".to_owned());
    config.secrets = Secrets { master_key: Some(Secret::new("the-master")), ..Secrets::default() };
    let problem = only(&config, "search_ui.api_key");
    assert!(problem.message.contains("master key"), "{problem:?}");
}

#[test]
fn local_rate_limit_buckets_are_refused_with_several_instances() {
    let mut config = with_search_page(3);
    let problem = only(&config, "search_ui.rate_limit.backend");
    assert!(problem.hint.contains("redis"), "{problem:?}");
    config.search_ui.rate_limit.backend = RateLimitBackend::Redis;
    assert_eq!(problems(&config), Vec::new(), "the task store's Redis is used");
    // One instance on SQLite with Redis buckets needs a URL of their own.
    let mut config = with_search_page(1);
    config.search_ui.rate_limit.backend = RateLimitBackend::Redis;
    only(&config, "search_ui.rate_limit.redis_url");
    config.search_ui.rate_limit.redis_url = Some("redis://127.0.0.1:6379".to_owned());
    assert_eq!(problems(&config), Vec::new());
    // Off, nothing of the section is checked.
    let mut config = with_search_page(3);
    config.search_ui.enabled = false;
    assert_eq!(problems(&config), Vec::new());
}

#[test]
fn the_search_page_path_rates_and_proxies_are_checked() {
    let mut config = with_search_page(1);
    config.search_ui.path = "/indexes/ui".to_owned();
    only(&config, "search_ui.path");
    config.search_ui.path = "/ui\"><script>".to_owned();
    only(&config, "search_ui.path");
    config.search_ui.path = "/search/".to_owned();
    assert_eq!(problems(&config), Vec::new());
    config.search_ui.rate_limit.per_ip = 0.0;
    only(&config, "search_ui.rate_limit.per_ip");
    config.search_ui.rate_limit.per_ip = 2.5;
    config.search_ui.rate_limit.burst = 0;
    only(&config, "search_ui.rate_limit.burst");
    config.search_ui.rate_limit.burst = 1;
    config.search_ui.trusted_proxies =
        vec!["10.0.0.0/8".into(), "192.0.2.1".into(), "proxy".into()];
    only(&config, "search_ui.trusted_proxies[2]");
}

#[test]
fn ilm_policies_need_a_condition_and_names_of_their_own() {
    let policy = |pattern: &str, max_documents: Option<u64>| IlmPolicy {
        pattern: pattern.to_owned(),
        rollover: RolloverConditions { max_documents, ..RolloverConditions::default() },
        delete_after: Some(HumanDuration::from_secs(3600)),
    };
    let mut config = valid();
    config.ilm.policies = vec![policy("logs", Some(1000)), policy("events", Some(10))];
    assert_eq!(problems(&config), Vec::new());
    config.ilm.policies[1] = policy("events", None);
    only(&config, "ilm.policies[1].rollover");
    config.ilm.policies[1] = policy("logs-000001", Some(10));
    only(&config, "ilm.policies[1].pattern");
    config.ilm.policies[1] = policy("bad name", Some(10));
    only(&config, "ilm.policies[1].pattern");
    config.ilm.policies[1] = policy("events", Some(0));
    only(&config, "ilm.policies[1].rollover.max_documents");
}
