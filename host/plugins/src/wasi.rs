//! The few WASI functions a Rust guest built for `wasm32-wasip2` imports, and nothing more.
//!
//! The standard library imports WASI interfaces for stdio, environment, exit, clocks and
//! randomness. A plugin gets real randomness and clocks (hash maps seed themselves from
//! `insecure-seed`); every other WASI function — files, sockets, environment, stdio — is linked as
//! a trap, so calling it fails the call without touching the host. Panics are reported through the
//! `log` import by the SDK's panic hook, not through stderr.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{Component, ComponentType, Linker, Lower};

use crate::imports::{random_bytes, StoreState};

/// WASI's `datetime` record.
#[derive(ComponentType, Lower, Clone, Copy)]
#[component(record)]
struct Datetime {
    seconds: u64,
    nanoseconds: u32,
}

fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn wall_clock() -> Datetime {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Datetime { seconds: now.as_secs(), nanoseconds: now.subsec_nanos() }
}

/// Most bytes one WASI random call returns.
const MAX_RANDOM: u64 = 64 * 1024;

/// Defines the granted WASI functions for the exact interface versions `component` imports, then
/// every remaining import as a trap.
pub(crate) fn link(linker: &mut Linker<StoreState>, component: &Component) -> wasmtime::Result<()> {
    let engine = linker.engine().clone();
    let names: Vec<String> =
        component.component_type().imports(&engine).map(|(name, _)| name.to_owned()).collect();
    for name in &names {
        let Some((interface, _version)) = name.split_once('@') else { continue };
        match interface {
            "wasi:random/random" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("get-random-bytes", |_, (len,): (u64,)| {
                    Ok((random_bytes(len.min(MAX_RANDOM) as usize)?,))
                })?;
                i.func_wrap("get-random-u64", |_, (): ()| Ok((random_u64()?,)))?;
            }
            "wasi:random/insecure" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("get-insecure-random-bytes", |_, (len,): (u64,)| {
                    Ok((random_bytes(len.min(MAX_RANDOM) as usize)?,))
                })?;
                i.func_wrap("get-insecure-random-u64", |_, (): ()| Ok((random_u64()?,)))?;
            }
            "wasi:random/insecure-seed" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("insecure-seed", |_, (): ()| Ok(((random_u64()?, random_u64()?),)))?;
            }
            "wasi:clocks/wall-clock" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("now", |_, (): ()| Ok((wall_clock(),)))?;
                i.func_wrap("resolution", |_, (): ()| {
                    Ok((Datetime { seconds: 0, nanoseconds: 1 },))
                })?;
            }
            "wasi:clocks/monotonic-clock" => {
                let mut i = linker.instance(name)?;
                i.func_wrap("now", |_, (): ()| Ok((monotonic_ns(),)))?;
                i.func_wrap("resolution", |_, (): ()| Ok((1u64,)))?;
            }
            _ => {}
        }
    }
    linker.define_unknown_imports_as_traps(component)
}

fn random_u64() -> wasmtime::Result<u64> {
    let bytes = random_bytes(8)?;
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes);
    Ok(u64::from_le_bytes(buf))
}

/// The package version whose imports the host provides.
pub(crate) const PACKAGE_VERSION: &str = "0.2.0";

/// The imports of `component` that are neither WASI nor the `miroir:plugin@0.2.0` interfaces: a
/// component that needs one of them was written for another host, or built against another
/// version of the package (wasmtime would link such an import as a trap, so it is refused at
/// load instead).
pub(crate) fn foreign_imports(engine: &wasmtime::Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| !name.starts_with("wasi:") && !name.starts_with("miroir:plugin/"))
        .map(str::to_owned)
        .chain(
            component
                .component_type()
                .imports(engine)
                .map(|(name, _)| name)
                .filter(|name| {
                    name.starts_with("miroir:plugin/")
                        && name.rsplit_once('@').map(|(_, v)| v) != Some(PACKAGE_VERSION)
                })
                .map(str::to_owned),
        )
        .collect()
}
