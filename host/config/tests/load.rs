//! Loading through figment: defaults, file, environment, and errors that name their key.
//!
//! Every test runs inside `figment::Jail`, which serializes tests that touch the process
//! environment and working directory.

// `Jail::expect_with` takes closures returning `figment::Result`, whose error is large by design.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;
use miroir_config::{
    Config, ConfigError, LogFormat, OtlpProtocol, PinningStrategy, Problem, ReplicaSelection,
    TaskStoreBackend, UnavailableShardPolicy,
};

const NODES: &str = r#"
nodes:
  - { id: meili-0, address: "http://127.0.0.1:7701", replica_group: a }
  - { id: meili-1, address: "http://127.0.0.1:7702", replica_group: a }
"#;

fn load(path: &str) -> Result<Config, ConfigError> {
    Config::load(Some(Path::new(path)))
}

fn problems(result: Result<Config, ConfigError>) -> Vec<Problem> {
    match result {
        Ok(config) => panic!("expected problems, got {config:?}"),
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("expected problems, got {other}"),
    }
}

fn find<'a>(problems: &'a [Problem], path: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no problem at {path}: {problems:#?}"))
}

#[test]
fn spec_example_parses_and_only_misses_component_files() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "miroir.yaml",
            &format!(
                "{NODES}{}",
                r#"
multi_search: { enabled: true, max_queries_per_batch: 100 }
vector_search: { enabled: false, over_fetch_factor: 3 }
shadow: { enabled: false }
cdc: { enabled: false }
plugins:
  dir: /usr/lib/miroir/plugins
  deadline_ms: 1000
  memory_mb: 64
  custom:
    - { name: top-facets, component: ./top_facets.wasm, enabled: true, config: { size: 5 } }
"#
            ),
        )?;
        let problems = problems(load("miroir.yaml"));
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["multi_search.enabled", "plugins.custom[0].component"], "{problems:#?}");
        Ok(())
    });
}

#[test]
fn spec_example_loads_when_components_exist() {
    Jail::expect_with(|jail| {
        jail.create_dir("plugins")?;
        jail.create_file("plugins/multi_search.wasm", "")?;
        jail.create_file("top_facets.wasm", "")?;
        jail.create_file(
            "miroir.yaml",
            &format!(
                "{NODES}{}",
                r#"
multi_search: { enabled: true, max_queries_per_batch: 100 }
vector_search: { enabled: false, over_fetch_factor: 3 }
shadow: { enabled: false }
cdc: { enabled: false }
plugins:
  dir: plugins
  deadline_ms: 1000
  memory_mb: 64
  custom:
    - { name: top-facets, component: ./top_facets.wasm, enabled: true, config: { size: 5 } }
"#
            ),
        )?;
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert!(config.multi_search.enabled);
        assert_eq!(config.multi_search.max_queries_per_batch, 100);
        assert_eq!(config.enabled_features(), ["multi_search"]);
        let plugin = &config.plugins.custom[0];
        assert_eq!(plugin.name, "top-facets");
        assert_eq!(plugin.config, serde_json::json!({ "size": 5 }));
        assert_eq!(config.plugins.deadline_ms_of(plugin), 1000);
        Ok(())
    });
}

#[test]
fn defaults_apply_to_everything_the_file_leaves_out() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", NODES)?;
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        let defaults = Config { nodes: config.nodes.clone(), ..Config::default() };
        assert_eq!(config.server, defaults.server);
        assert_eq!(config.shards, 64);
        assert_eq!(config.replication_factor, 1);
        assert_eq!(config.replicas, 1);
        assert_eq!(config.server.port, 7700);
        assert_eq!(config.task_store.backend, TaskStoreBackend::Sqlite);
        assert_eq!(config.leader.lease_ttl.get().as_secs(), 30);
        assert_eq!(config.leader.renew_interval.get().as_secs(), 10);
        assert_eq!(config.idempotency.ttl.get().as_secs(), 24 * 3600);
        assert_eq!(config.scatter.unavailable_shard_policy, UnavailableShardPolicy::Partial);
        assert_eq!(config.session_pinning.strategy, PinningStrategy::Block);
        assert_eq!(config.telemetry.log_format, LogFormat::Human);
        assert!(config.enabled_features().is_empty());
        assert_eq!(config.secrets, Default::default());
        Ok(())
    });
}

#[test]
fn file_values_are_typed() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "miroir.yaml",
            &format!(
                "{NODES}{}",
                r#"
server: { bind: "127.0.0.1", port: 8080, request_timeout: "1m 30s" }
scatter: { node_timeout: 250ms, unavailable_shard_policy: error }
session_pinning: { strategy: route_pin, max_wait_ms: 50 }
telemetry: { log_format: json, sampling_ratio: 0.25 }
replication_factor: 2
instance_id: 7
"#
            ),
        )?;
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.server.bind.to_string(), "127.0.0.1");
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.server.request_timeout.get().as_secs(), 90);
        assert_eq!(config.scatter.node_timeout.get().as_millis(), 250);
        assert_eq!(config.scatter.unavailable_shard_policy, UnavailableShardPolicy::Error);
        assert_eq!(config.session_pinning.strategy, PinningStrategy::RoutePin);
        assert_eq!(config.telemetry.log_format, LogFormat::Json);
        assert_eq!(config.replication_factor, 2);
        assert_eq!(config.instance_id.as_deref(), Some("7"));
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", &format!("{NODES}server: {{ port: 7000 }}\nshards: 8\n"))?;
        jail.set_env("MIROIR_SERVER__PORT", "8080");
        jail.set_env("MIROIR_SHARDS", "16");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.shards, 16);
        Ok(())
    });
}

#[test]
fn double_underscore_nests_and_single_underscore_stays_in_names() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", NODES)?;
        jail.set_env("MIROIR_SESSION_PINNING__MAX_WAIT_MS", "50");
        jail.set_env("MIROIR_CDC__SINKS__QUEUE__ENABLED", "false");
        jail.set_env("MIROIR_TASK_STORE__BACKEND", "redis");
        jail.set_env("MIROIR_TASK_STORE__URL", "redis://127.0.0.1:6379/0");
        jail.set_env("MIROIR_REPLICAS", "3");
        jail.set_env("MIROIR_LEADER__LEASE_TTL", "45s");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.session_pinning.max_wait_ms, 50);
        assert!(!config.cdc.sinks.queue.enabled);
        assert_eq!(config.task_store.backend, TaskStoreBackend::Redis);
        assert_eq!(config.replicas, 3);
        assert_eq!(config.leader.lease_ttl.get().as_secs(), 45);
        Ok(())
    });
}

#[test]
fn environment_alone_is_enough() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "MIROIR_NODES",
            r#"[{id="n1", address="http://127.0.0.1:7701", replica_group="a"}]"#,
        );
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.nodes.len(), 1);
        assert_eq!(config.nodes[0].id.as_str(), "n1");
        Ok(())
    });
}

#[test]
fn toml_is_chosen_by_extension() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "miroir.toml",
            r#"
shards = 4
[server]
port = 9000
[[nodes]]
id = "meili-0"
address = "http://127.0.0.1:7701"
replica_group = "a"
"#,
        )?;
        let config = load("miroir.toml").map_err(|e| e.to_string())?;
        assert_eq!(config.shards, 4);
        assert_eq!(config.server.port, 9000);
        Ok(())
    });
}

#[test]
fn unknown_key_in_file_is_named_with_its_path() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", &format!("{NODES}server: {{ prot: 8080 }}\n"))?;
        let problems = problems(load("miroir.yaml"));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        let problem = find(&problems, "server.prot");
        assert_eq!(problem.message, "unknown key `prot`");
        assert!(problem.hint.starts_with("did you mean `port`?"), "{}", problem.hint);
        assert!(
            problem.origin.as_deref().is_some_and(|o| o.contains("miroir.yaml")),
            "{problem:?}"
        );
        Ok(())
    });
}

#[test]
fn unknown_key_in_environment_names_the_variable() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", NODES)?;
        jail.set_env("MIROIR_SERVER__PROT", "8080");
        let problems = problems(load("miroir.yaml"));
        let problem = find(&problems, "server.prot");
        assert_eq!(problem.origin.as_deref(), Some("environment variable MIROIR_SERVER__PROT"));
        Ok(())
    });
}

#[test]
fn every_parse_problem_is_reported_in_one_run() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "miroir.yaml",
            &format!(
                "{NODES}{}",
                r#"
shard: 4
server: { prot: 8080, port: "eighty" }
telemetry: { colour: true, log_format: xml }
leader: { lease_ttl: 30 }
replication_factor: 0
"#
            ),
        )?;
        let problems = problems(load("miroir.yaml"));
        let mut paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "leader.lease_ttl",
                "replication_factor",
                "server.port",
                "server.prot",
                "shard",
                "telemetry.colour",
                "telemetry.log_format",
            ],
            "{problems:#?}"
        );
        assert!(find(&problems, "shard").hint.contains("did you mean `shards`?"));
        assert!(find(&problems, "telemetry.log_format").hint.contains("human, json"));
        assert!(find(&problems, "leader.lease_ttl").message.contains("duration"));
        Ok(())
    });
}

#[test]
fn a_secret_in_the_file_is_refused_naming_its_variable() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "miroir.yaml",
            &format!("{NODES}master_key: hunter2\nserver: {{ node_master_key: x }}\n"),
        )?;
        let problems = problems(load("miroir.yaml"));
        let top = find(&problems, "master_key");
        assert!(top.message.contains("only from the environment"), "{top:?}");
        assert!(top.hint.contains("MIROIR_MASTER_KEY"), "{top:?}");
        assert!(find(&problems, "server.node_master_key").hint.contains("MIROIR_NODE_MASTER_KEY"));
        Ok(())
    });
}

#[test]
fn the_otlp_protocol_comes_from_the_file_the_environment_or_the_standard_variable() {
    Jail::expect_with(|jail| {
        let telemetry = "telemetry: { otlp_endpoint: \"http://127.0.0.1:4317\" }\n";
        jail.create_file("miroir.yaml", &format!("{NODES}{telemetry}"))?;
        jail.create_file(
            "http.yaml",
            &format!("{NODES}telemetry: {{ otlp_protocol: http/protobuf }}\n"),
        )?;
        let config = load("http.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.telemetry.otlp_protocol, Some(OtlpProtocol::Http));
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.telemetry.otlp_protocol, None);
        assert_eq!(config.telemetry.effective_otlp_protocol(), Ok(OtlpProtocol::Http));
        jail.set_env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.telemetry.effective_otlp_protocol(), Ok(OtlpProtocol::Grpc));
        jail.set_env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
        let problems = problems(load("miroir.yaml"));
        assert!(find(&problems, "telemetry.otlp_protocol").message.contains("http/json"));
        // The key wins over the standard variable.
        jail.set_env("MIROIR_TELEMETRY__OTLP_PROTOCOL", "grpc");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.telemetry.otlp_protocol, Some(OtlpProtocol::Grpc));
        jail.set_env("MIROIR_TELEMETRY__OTLP_PROTOCOL", "carrier-pigeon");
        assert!(load("miroir.yaml").is_err());
        Ok(())
    });
}

#[test]
fn secrets_come_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", NODES)?;
        jail.set_env("MIROIR_MASTER_KEY", "a-master-key-of-some-length");
        jail.set_env("MIROIR_ADMIN_API_KEY", "admin");
        jail.set_env("MIROIR_CONFIG", "ignored-by-the-loader.yaml");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        let master = config.secrets.master_key.as_ref().map(|s| s.expose());
        assert_eq!(master, Some("a-master-key-of-some-length"));
        assert_eq!(config.secrets.admin_api_key.as_ref().map(|s| s.expose()), Some("admin"));
        assert!(config.secrets.node_master_key.is_none());
        Ok(())
    });
}

#[test]
fn an_empty_secret_variable_is_a_problem() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", NODES)?;
        jail.set_env("MIROIR_NODE_MASTER_KEY", "");
        let problems = problems(load("miroir.yaml"));
        assert_eq!(find(&problems, "MIROIR_NODE_MASTER_KEY").message, "is set but empty");
        Ok(())
    });
}

#[test]
fn a_missing_required_key_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", "nodes:\n  - { id: meili-0, replica_group: a }\n")?;
        let problems = problems(load("miroir.yaml"));
        assert_eq!(find(&problems, "nodes[0].address").message, "is required but missing");
        Ok(())
    });
}

#[test]
fn bad_values_inside_lists_are_named_with_their_index() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "miroir.yaml",
            r#"
nodes:
  - { id: meili-0, address: "http://127.0.0.1:7701", replica_group: a }
  - { id: "bad id", address: "http://127.0.0.1:7702", replica_group: a, weight: 2 }
"#,
        )?;
        let problems = problems(load("miroir.yaml"));
        assert!(find(&problems, "nodes[1].id").message.contains("not a valid node id"));
        assert_eq!(find(&problems, "nodes[1].weight").message, "unknown key `weight`");
        Ok(())
    });
}

#[test]
fn relative_paths_in_the_file_are_relative_to_the_file() {
    Jail::expect_with(|jail| {
        jail.create_dir("conf")?;
        jail.create_dir("conf/plugins")?;
        jail.create_file("conf/plugins/vector_search.wasm", "")?;
        jail.create_file("conf/mine.wasm", "")?;
        jail.create_file(
            "conf/miroir.yaml",
            &format!(
                "{NODES}{}",
                r#"
task_store: { path: data/miroir.db }
vector_search: { enabled: true }
plugins:
  dir: plugins
  custom: [{ name: mine, component: mine.wasm }]
"#
            ),
        )?;
        let config = load("conf/miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.plugins.dir, Path::new("conf/plugins"));
        assert_eq!(config.plugins.custom[0].component, Path::new("conf/mine.wasm"));
        assert_eq!(config.task_store.path, Path::new("conf/data/miroir.db"));
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error() {
    Jail::expect_with(|_| {
        let error = load("nope.yaml").expect_err("missing file");
        assert!(matches!(error, ConfigError::File { .. }), "{error}");
        assert!(error.to_string().contains("no such file"), "{error}");
        Ok(())
    });
}

#[test]
fn a_syntax_error_is_reported_as_such() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", "server: { port: 8080\n")?;
        let error = load("miroir.yaml").expect_err("bad yaml");
        assert!(matches!(error, ConfigError::File { .. }), "{error}");
        Ok(())
    });
}

#[test]
fn the_error_message_lists_every_problem_with_hints() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", "server: { prot: 1 }\n")?;
        let error = load("miroir.yaml").expect_err("invalid");
        let text = error.to_string();
        assert!(text.starts_with("the configuration has 2 problems:"), "{text}");
        assert!(text.contains("  - server.prot: unknown key `prot`"), "{text}");
        assert!(text.contains("  - nodes: no Meilisearch node is configured"), "{text}");
        assert!(text.contains("hint: "), "{text}");
        Ok(())
    });
}

#[test]
fn platform_variables_that_share_the_prefix_are_not_configuration() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", NODES)?;
        // What Kubernetes injects for a Service named `miroir`.
        jail.set_env("MIROIR_PORT", "tcp://10.0.0.1:7700");
        jail.set_env("MIROIR_SERVICE_HOST", "10.0.0.1");
        jail.set_env("MIROIR_PORT_7700_TCP_ADDR", "10.0.0.1");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(config.server.port, 7700);
        // A misspelt section is still reported.
        jail.set_env("MIROIR_SERVR__PORT", "1");
        let err = load("miroir.yaml").expect_err("a misspelt section is an error");
        assert!(err.to_string().contains("servr"), "{err}");
        Ok(())
    });
}

#[test]
fn multi_search_is_on_by_default_and_a_missing_component_only_makes_it_unavailable() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", &format!("{NODES}plugins: {{ dir: none-here }}\n"))?;
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert!(config.multi_search.enabled && !config.multi_search.enabled_explicitly);
        assert_eq!(config.unavailable_features(), ["multi_search"]);
        assert!(config.enabled_features().is_empty());

        jail.create_dir("none-here")?;
        jail.create_file("none-here/multi_search.wasm", "")?;
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert!(config.unavailable_features().is_empty());
        assert_eq!(config.enabled_features(), ["multi_search"]);
        Ok(())
    });
}

#[test]
fn an_explicit_multi_search_flag_without_its_component_fails_from_the_environment_too() {
    Jail::expect_with(|jail| {
        jail.create_file("miroir.yaml", &format!("{NODES}plugins: {{ dir: none-here }}\n"))?;
        jail.set_env("MIROIR_MULTI_SEARCH__ENABLED", "true");
        let problems = problems(load("miroir.yaml"));
        find(&problems, "multi_search.enabled");
        jail.set_env("MIROIR_MULTI_SEARCH__ENABLED", "false");
        let config = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert!(config.unavailable_features().is_empty() && config.enabled_features().is_empty());
        Ok(())
    });
}

#[test]
fn replica_selection_and_hedging_are_read_and_checked() {
    Jail::expect_with(|jail| {
        let config = |scatter: &str| format!("{NODES}scatter: {scatter}\n");
        jail.create_file(
            "miroir.yaml",
            &config(
                "{ replica_selection: round_robin, hedging: { enabled: false, budget: 0.1, min_delay: 3ms } }",
            ),
        )?;
        let loaded = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(loaded.scatter.replica_selection, ReplicaSelection::RoundRobin);
        assert!(!loaded.scatter.hedging.enabled);
        assert_eq!(loaded.scatter.hedging.budget, 0.1);
        assert_eq!(loaded.scatter.hedging.min_delay.get().as_millis(), 3);
        jail.create_file("miroir.yaml", NODES)?;
        let defaults = load("miroir.yaml").map_err(|e| e.to_string())?;
        assert_eq!(defaults.scatter.replica_selection, ReplicaSelection::Adaptive);
        assert!(defaults.scatter.hedging.enabled && defaults.scatter.hedging.budget == 0.05);

        jail.create_file(
            "miroir.yaml",
            &config("{ node_timeout: 1s, hedging: { budget: 1.5, min_delay: 2s } }"),
        )?;
        let problems = problems(load("miroir.yaml"));
        assert!(find(&problems, "scatter.hedging.budget").message.contains("1.5"));
        assert!(find(&problems, "scatter.hedging.min_delay").message.contains("node_timeout"));
        Ok(())
    });
}
