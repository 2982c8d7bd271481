//! Loading: defaults, then the file, then the environment; and turning figment's errors into
//! problems with key paths.
//!
//! serde stops at the first error, so parsing runs in a loop: each error becomes a problem, the
//! offending key is removed from the merged value, and parsing runs again. That way one run lists
//! every unknown key and every mistyped value, not just the first.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml, Yaml};
use figment::value::Value;
use figment::{Figment, Provider, Source};
use serde::de::{self, Visitor};
use serde::Deserializer;

use crate::error::{Problem, Report};
use crate::secrets::SECRET_KEYS;
use crate::{Config, ConfigError, Secrets};

/// Prefix of the environment variables that override the file: `MIROIR_SERVER__PORT=8080` sets
/// `server.port`.
pub const ENV_PREFIX: &str = "MIROIR_";

/// Variables with the prefix that are not config keys: the secrets, and the config file path the
/// CLI reads.
const NOT_CONFIG_KEYS: &[&str] = &["master_key", "admin_api_key", "node_master_key", "config"];

/// The top-level keys of the configuration. A `MIROIR_` variable without `__` is read only when
/// it names one of them: platforms set variables such as `MIROIR_PORT=tcp://10.0.0.1:7700`
/// (Kubernetes service links for a Service named `miroir`) that are not meant for Miroir.
/// Variables with `__` are always read, so a misspelt section is reported, not ignored.
const TOP_LEVEL_KEYS: &[&str] = &[
    "server",
    "nodes",
    "shards",
    "replication_factor",
    "write_quorum",
    "replicas",
    "instance_id",
    "task_store",
    "health",
    "scatter",
    "rebalancer",
    "leader",
    "idempotency",
    "session_pinning",
    "telemetry",
    "metrics",
    "multi_search",
    "vector_search",
    "shadow",
    "cdc",
    "search_ui",
    "ilm",
    "plugins",
];

/// Whether the variable `MIROIR_<key>` is meant as configuration.
fn is_config_variable(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !NOT_CONFIG_KEYS.contains(&key.as_str())
        && (key.contains("__") || TOP_LEVEL_KEYS.contains(&key.as_str()))
}

/// Stop collecting parse problems after this many; the user has enough to fix.
const MAX_PARSE_PROBLEMS: usize = 64;

/// The layered figment: defaults, then `file` (TOML if it ends in `.toml`, YAML otherwise), then
/// `MIROIR_*` environment variables.
///
/// Fails if `file` is missing or is not valid YAML/TOML; key-level problems surface later, when
/// the figment is turned into a [`Config`].
pub fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.to_owned(),
                reason: "no such file".to_owned(),
            });
        }
        let is_toml = path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
        figment = if is_toml {
            merge_checked(figment, Toml::file_exact(path), path)?
        } else {
            merge_checked(figment, Yaml::file_exact(path), path)?
        };
    }
    let env = Env::prefixed(ENV_PREFIX).filter(|key| is_config_variable(key.as_str()));
    Ok(figment.merge(env.split("__")))
}

/// Merges a file provider after reading it once, so that a syntax error is reported as such.
fn merge_checked<P: Provider>(
    figment: Figment,
    provider: P,
    path: &Path,
) -> Result<Figment, ConfigError> {
    match provider.data() {
        Ok(_) => Ok(figment.merge(provider)),
        Err(error) => Err(ConfigError::File { path: path.to_owned(), reason: error.to_string() }),
    }
}

impl Config {
    /// Loads the configuration exactly as `miroir serve --config <file>` does: defaults, the
    /// file, `MIROIR_*` variables and the secrets from the environment, then validates it.
    ///
    /// Every problem is reported, each with its key path and a hint.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let figment = figment(file)?;
        let mut report = Report::default();
        let secrets = Secrets::from_env(&mut report);
        let mut problems = report.into_problems();
        match Config::from_figment(&figment) {
            Ok(config) if problems.is_empty() => Ok(Config { secrets, ..config }),
            Ok(_) => Err(ConfigError::Invalid(problems)),
            Err(ConfigError::Invalid(more)) => {
                problems.extend(more);
                Err(ConfigError::Invalid(problems))
            }
            Err(other) => Err(other),
        }
    }

    /// Extracts and validates the configuration held by `figment`, without reading secrets.
    ///
    /// Relative paths that came from a file are resolved against the file's directory.
    pub fn from_figment(figment: &Figment) -> Result<Config, ConfigError> {
        let merged: Value = figment.extract().map_err(|error| ConfigError::File {
            path: PathBuf::new(),
            reason: error.to_string(),
        })?;
        let Parsed { config, mut problems, removed } = parse(figment, merged);
        if let Some(mut config) = config {
            resolve_paths(&mut config, figment);
            config.multi_search.enabled_explicitly = written(figment, "multi_search.enabled");
            problems.extend(
                config
                    .problems()
                    .into_iter()
                    .filter(|p| !removed.iter().any(|r| is_under(&p.path, r)))
                    .map(|p| {
                        let origin = origin(figment, &split_path(&p.path));
                        p.with_origin(origin)
                    }),
            );
            if problems.is_empty() {
                return Ok(config);
            }
        }
        Err(ConfigError::Invalid(problems))
    }
}

struct Parsed {
    /// The configuration, once every bad key was removed; `None` if a problem could not be
    /// removed (a missing required key).
    config: Option<Config>,
    problems: Vec<Problem>,
    /// Display paths of the removed keys: their defaults stand in, so checks on them are moot.
    removed: Vec<String>,
}

fn parse(figment: &Figment, mut value: Value) -> Parsed {
    let mut problems = Vec::new();
    let mut removed = Vec::new();
    loop {
        let errors = match value.deserialize::<Config>() {
            Ok(config) => return Parsed { config: Some(config), problems, removed },
            Err(errors) => errors,
        };
        let mut progressed = false;
        for error in errors {
            problems.push(problem_from(&error, figment));
            if remove_key(&mut value, &error.path) {
                removed.push(display_path(&error.path));
                progressed = true;
            }
        }
        if !progressed || problems.len() >= MAX_PARSE_PROBLEMS {
            return Parsed { config: None, problems, removed };
        }
    }
}

/// Removes the key at `path` from a dictionary. Array elements are never removed, since that
/// would shift the indices later problems are reported with.
fn remove_key(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for segment in parents {
        current = match current {
            Value::Dict(_, dict) => match dict.get_mut(segment) {
                Some(next) => next,
                None => return false,
            },
            Value::Array(_, items) => {
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(next) => next,
                    None => return false,
                }
            }
            _ => return false,
        };
    }
    match current {
        Value::Dict(_, dict) => dict.remove(last).is_some(),
        _ => false,
    }
}

/// `["nodes", "0", "id"]` → `nodes[0].id`.
fn display_path(segments: &[impl AsRef<str>]) -> String {
    let mut path = String::new();
    for segment in segments {
        let segment = segment.as_ref();
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(segment);
        }
    }
    path
}

/// `nodes[0].id` → `["nodes", "0", "id"]`.
fn split_path(path: &str) -> Vec<String> {
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether display path `path` is `root` or inside it.
fn is_under(path: &str, root: &str) -> bool {
    path.strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

const GENERIC_HINT: &str = "see examples/config/miroir.yaml for the expected form";

fn problem_from(error: &figment::Error, figment: &Figment) -> Problem {
    let path = display_path(&error.path);
    let at = |path: String| if path.is_empty() { "(top level)".to_owned() } else { path };
    let problem = match &error.kind {
        Kind::UnknownField(field, expected) => {
            match SECRET_KEYS.iter().find(|(key, _)| key == field) {
                Some((_, env)) => Problem::new(
                    at(path),
                    "secrets are read only from the environment, never from the config file",
                    format!("remove `{field}` from the configuration and set {env} instead"),
                ),
                None => Problem::new(
                    at(path),
                    format!("unknown key `{field}`"),
                    unknown_key_hint(field, expected),
                ),
            }
        }
        Kind::MissingField(field) => {
            let full = if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
            Problem::new(full, "is required but missing", format!("add `{field}`"))
        }
        Kind::UnknownVariant(variant, expected) => Problem::new(
            at(path),
            format!("unknown value `{variant}`"),
            format!("use one of: {}", expected.join(", ")),
        ),
        Kind::InvalidType(actual, expected) => {
            // serde names the Rust type of a section (`struct ServerConfig`); say what it is.
            let expected = if expected.starts_with("struct ") {
                "a section of keys"
            } else {
                expected.as_str()
            };
            Problem::new(at(path), format!("expected {expected}, found {actual}"), GENERIC_HINT)
        }
        Kind::InvalidValue(actual, expected) => Problem::new(
            at(path),
            format!("invalid value {actual}: expected {expected}"),
            GENERIC_HINT,
        ),
        Kind::Message(message) => Problem::new(at(path), message.clone(), GENERIC_HINT),
        other => Problem::new(at(path), other.to_string(), GENERIC_HINT),
    };
    problem.with_origin(origin(figment, &error.path))
}

fn unknown_key_hint(field: &str, expected: &[&str]) -> String {
    if expected.is_empty() {
        return "remove it: this section takes no keys".to_owned();
    }
    let closest = expected
        .iter()
        .map(|candidate| (strsim::jaro_winkler(field, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let allowed = expected.join(", ");
    match closest {
        Some((_, candidate)) => format!("did you mean `{candidate}`? keys allowed here: {allowed}"),
        None => format!("remove it or fix its spelling; keys allowed here: {allowed}"),
    }
}

/// Where the value at `segments` came from: a file, an environment variable, or (for defaults)
/// nowhere worth naming.
fn origin(figment: &Figment, segments: &[String]) -> Option<String> {
    // figment finds metadata through dictionaries only; stop at the first array index.
    let dict_path: Vec<&str> = segments
        .iter()
        .map(String::as_str)
        .take_while(|s| !s.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    (1..=dict_path.len()).rev().find_map(|n| {
        let metadata = figment.find_metadata(&dict_path[..n].join("."))?;
        match &metadata.source {
            Some(Source::File(file)) => Some(format!("file {}", file.display())),
            _ if metadata.name.contains("environment") => Some(format!(
                "environment variable {ENV_PREFIX}{}",
                dict_path.iter().map(|s| s.to_ascii_uppercase()).collect::<Vec<_>>().join("__")
            )),
            _ => None,
        }
    })
}

/// The directory of the file that set `key`, if a file did.
fn file_dir(figment: &Figment, key: &str) -> Option<PathBuf> {
    match &figment.find_metadata(key)?.source {
        Some(Source::File(file)) => Some(file.parent().unwrap_or(Path::new("")).to_owned()),
        _ => None,
    }
}

/// Whether `key` was written in the configuration (a file or the environment), not left at
/// the defaults, which are the only value that comes from code.
fn written(figment: &Figment, key: &str) -> bool {
    figment.find_metadata(key).is_some_and(|m| !matches!(m.source, Some(Source::Code(_))))
}

fn resolve(path: &mut PathBuf, base: Option<&Path>) {
    if let Some(base) = base {
        if path.is_relative() && !path.as_os_str().is_empty() {
            *path = base.join(&*path);
        }
    }
}

fn resolve_paths(config: &mut Config, figment: &Figment) {
    resolve(&mut config.task_store.path, file_dir(figment, "task_store.path").as_deref());
    resolve(&mut config.plugins.dir, file_dir(figment, "plugins.dir").as_deref());
    let custom_dir = file_dir(figment, "plugins.custom");
    for plugin in &mut config.plugins.custom {
        resolve(&mut plugin.component, custom_dir.as_deref());
    }
}

/// Deserializes an optional string that may be written as a number (`instance_id: 3`), as
/// environment variables often are.
pub(crate) fn optional_string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct OptionalName;

    impl<'de> Visitor<'de> for OptionalName {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an unsigned integer")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }

    deserializer.deserialize_option(OptionalName)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_path_brackets_indices() {
        assert_eq!(display_path(&["nodes", "0", "id"]), "nodes[0].id");
        assert_eq!(display_path(&["server", "prot"]), "server.prot");
        assert_eq!(display_path(&[] as &[&str]), "");
        assert_eq!(split_path("nodes[0].id"), ["nodes", "0", "id"]);
    }

    #[test]
    fn is_under_respects_segment_boundaries() {
        assert!(is_under("nodes[0].id", "nodes"));
        assert!(is_under("nodes", "nodes"));
        assert!(!is_under("nodes_extra", "nodes"));
    }

    #[test]
    fn unknown_key_hint_suggests_the_closest_key() {
        let hint = unknown_key_hint("prot", &["bind", "port"]);
        assert!(hint.starts_with("did you mean `port`?"), "{hint}");
        let hint = unknown_key_hint("zzzz", &["bind", "port"]);
        assert!(hint.contains("keys allowed here: bind, port"), "{hint}");
    }
}
