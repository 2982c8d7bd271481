//! Shared helpers of the plugin runtime's tests: where the built components are, and requests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use miroir_plugins::{InMemoryHost, PluginRuntime, PluginSpec, Request};

/// The directory `scripts/build-plugins.sh` copies components to: `$MIROIR_PLUGINS_DIR`, else
/// `${CARGO_TARGET_DIR:-<workspace>/target}/plugins`.
pub fn plugins_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MIROIR_PLUGINS_DIR") {
        return PathBuf::from(dir);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { workspace.join(t) })
        .unwrap_or_else(|| workspace.join("target"));
    target.join("plugins")
}

/// The built component `file` (e.g. `test_hooks.wasm`). Panics with what to run when missing.
pub fn component(file: &str) -> PathBuf {
    let path = plugins_dir().join(file);
    assert!(
        path.is_file(),
        "plugin component {} is missing: run `make plugins` (scripts/build-plugins.sh) before \
         `cargo test -p miroir-plugins`",
        path.display()
    );
    path
}

/// A spec for `file` under `name`, with a deadline of `deadline_ms` and a cap of `memory_mb`.
pub fn spec(name: &str, file: &str, deadline_ms: u64, memory_mb: u64) -> PluginSpec {
    PluginSpec {
        deadline: Duration::from_millis(deadline_ms),
        memory_mb,
        ..PluginSpec::new(name, component(file))
    }
}

/// Loads `specs` against a fresh in-memory host.
pub async fn load(specs: Vec<PluginSpec>) -> (PluginRuntime, Arc<InMemoryHost>) {
    let host = Arc::new(InMemoryHost::new());
    let runtime = PluginRuntime::load(specs, host.clone()).await.expect("plugins load");
    (runtime, host)
}

/// A request with no header.
pub fn request(method: &str, path_and_query: &str, body: &[u8]) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    Request {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers: Vec::new(),
        body: body.to_vec(),
    }
}

/// The response body as JSON.
pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("the plugin answered JSON")
}
