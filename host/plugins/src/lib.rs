//! Miroir's WebAssembly plugin runtime: the only crate that depends on wasmtime.
//!
//! It owns loading plugins (components built for `wasm32-wasip2` against the `miroir:plugin@0.2.0`
//! WIT package in `wit/`), the sandbox every call runs in, and the host side of the plugin
//! imports. It does not own what those imports do: searches, key-value storage and outbound HTTP
//! reach the rest of the gateway through the [`PluginHost`] trait, which the gateway implements
//! ([`InMemoryHost`] implements it for tests).
//!
//! # Loading
//!
//! [`PluginRuntime::from_config`] loads every plugin the configuration enables: each first-party
//! feature with `enabled: true` (`<plugins.dir>/<feature>.wasm`) and each enabled entry of
//! `plugins.custom`. Each component is compiled once and the artifact cached beside it (keyed by
//! the component's hash and the engine), linked, pre-instantiated, and instantiated once at start
//! so that a broken plugin fails at boot; its `manifest` registers its routes and hooks. With no
//! plugin enabled, no wasmtime engine is created at all ([`PluginRuntime::engine_created`]).
//!
//! # Hooks
//!
//! [`PluginRuntime::hook_port`] offers the loaded plugins' `plan-search`, `merge-search`,
//! `after-response` and `on-write` hooks to the gateway as a [`miroir_types::HookPort`]. Every call
//! of every export is reported to [`PluginHost::record_call`] (hook, duration, failure).
//!
//! # The sandbox
//!
//! Every call runs in an instance taken from a small pool, with the plugin's deadline (the
//! engine's epoch advances every 10 ms and the guest yields at each tick, so the call's timeout
//! fires even in a busy loop) and memory cap (growth past `memory_mb` traps). A call that runs
//! late, overruns memory or traps fails alone with a [`PluginError`] the gateway maps to
//! `miroir_plugin_failed` (502); its instance is dropped and the next call gets a fresh one. A
//! plugin reaches nothing but its imports: WASI's clocks and randomness work, every other WASI
//! function (files, sockets, environment, stdio) traps, and `http.send` reaches only the origins
//! listed in the plugin's configuration.

mod bindings;
mod cache;
mod error;
mod hooks;
mod host;
mod imports;
mod instance;
mod limits;
mod runtime;
mod spec;
mod wasi;

pub use bindings::miroir::plugin::types::{
    Hook, Manifest, Request, Response, Route, Timing, WriteEvent,
};
pub use error::{HostCallError, LoadError, PluginError};
pub use hooks::PluginHooks;
pub use host::{
    send_http, HttpRequest, HttpResponse, InMemoryHost, MetricKind, MetricSample, PluginHost,
    ShardAnswer,
};
pub use instance::PluginStats;
pub use runtime::{engines_created_in_process, OffPathReport, PluginRuntime, TickTask};
pub use spec::PluginSpec;
