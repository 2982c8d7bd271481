//! Compiling a component once and keeping the compiled artifact next to it.
//!
//! The artifact is named `<stem>-<key>.wasm.cwasm`, where the key hashes the component's bytes and
//! the engine's compatibility hash (wasmtime version and every setting that affects code). A new
//! component or a new wasmtime gives a new key, so a stale artifact is never loaded; older
//! artifacts of the same component are removed when a new one is written. When the component's
//! directory is not writable, the artifact goes to `$TMPDIR/miroir-plugin-cache/`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::LoadError;

/// Loads `path` as a component, from its cached artifact when there is a valid one.
pub(crate) fn load_component(
    engine: &Engine,
    plugin: &str,
    path: &Path,
) -> Result<Component, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let key = cache_key(engine, &bytes);
    let candidates = candidate_paths(path, &key);
    for artifact in &candidates {
        if artifact.is_file() {
            match deserialize_artifact(engine, artifact) {
                Ok(component) => {
                    tracing::debug!(plugin, artifact = %artifact.display(), "loaded precompiled plugin");
                    if artifact != &candidates[0] {
                        // Found in the shared cache: keep a copy beside the component when that
                        // directory is writable, so the artifact travels with it.
                        let copied = std::fs::read(artifact)
                            .and_then(|compiled| write_artifact(&candidates[0], &compiled));
                        if let Err(e) = copied {
                            tracing::debug!(plugin, error = %e, "artifact not copied beside the component");
                        }
                    }
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(plugin, artifact = %artifact.display(), error = %e, "ignoring unusable precompiled plugin");
                }
            }
        }
    }
    let started = std::time::Instant::now();
    let compiled = engine.precompile_component(&bytes).map_err(|e| LoadError::Compile {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        message: format!("{e:#}"),
    })?;
    tracing::info!(plugin, took_ms = started.elapsed().as_millis() as u64, "compiled plugin");
    for artifact in &candidates {
        match write_artifact(artifact, &compiled) {
            Ok(()) => match deserialize_artifact(engine, artifact) {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(plugin, error = %e, "cannot load the artifact just written")
                }
            },
            Err(e) => {
                tracing::debug!(plugin, artifact = %artifact.display(), error = %e, "cannot cache compiled plugin here");
            }
        }
    }
    tracing::warn!(plugin, "compiled plugin kept in memory only: no writable cache directory");
    Component::new(engine, &bytes).map_err(|e| LoadError::Compile {
        plugin: plugin.to_owned(),
        path: path.to_owned(),
        message: format!("{e:#}"),
    })
}

fn cache_key(engine: &Engine, component: &[u8]) -> String {
    let digest = Sha256::digest(component);
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let mut key = String::with_capacity(33);
    for byte in &digest[..8] {
        key.push_str(&format!("{byte:02x}"));
    }
    key.push('-');
    key.push_str(&format!("{:016x}", hasher.finish()));
    key
}

fn stem_of(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into())
}

/// Next to the component first, then the shared temporary cache.
fn candidate_paths(component: &Path, key: &str) -> Vec<PathBuf> {
    let name = format!("{}-{key}.wasm.cwasm", stem_of(component));
    let beside =
        component.parent().map(|dir| dir.join(&name)).unwrap_or_else(|| PathBuf::from(&name));
    vec![beside, std::env::temp_dir().join("miroir-plugin-cache").join(name)]
}

/// Writes atomically (temporary file, then rename) and removes older artifacts of the component.
fn write_artifact(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, compiled)?;
    std::fs::rename(&tmp, path)?;
    // `<stem>-<key>.wasm.cwasm`: the key is 33 characters after the stem's dash.
    if let Some(prefix) = file_name.get(..file_name.len().saturating_sub(33 + ".wasm.cwasm".len()))
    {
        for entry in std::fs::read_dir(dir)?.flatten() {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other != file_name
                && other.starts_with(prefix)
                && other.ends_with(".wasm.cwasm")
                && other.len() == file_name.len()
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Maps a compiled artifact into memory.
#[allow(unsafe_code)]
fn deserialize_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` trusts the file to be machine code that wasmtime produced. This
    // file was produced by `Engine::precompile_component` of this process or an earlier one, and
    // its name carries the hash of the component it came from and the engine's compatibility
    // hash, which wasmtime also checks in the file's header. It lives beside the component (or in
    // our own cache directory): whoever can replace it can already replace the component itself.
    unsafe { Component::deserialize_file(engine, path) }
}
