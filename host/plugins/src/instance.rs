//! One loaded plugin: its pre-instantiated component, a pool of idle instances, and the sandboxed
//! call (deadline, memory cap, replacement of failed instances).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::Instrument as _;
use wasmtime::{Engine, Store};

use crate::bindings::{types, Plugin, PluginPre};
use crate::error::PluginError;
use crate::imports::{PluginContext, StoreState};
use crate::limits::MemoryLimiter;

/// Most idle instances kept per plugin; more are created under load and dropped after.
const MAX_IDLE: usize = 8;
/// Most calls of one plugin running at once; further calls wait for a slot.
const MAX_CONCURRENT: usize = 64;

/// Counters of one plugin, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginStats {
    /// Calls made.
    pub calls: u64,
    /// Calls the sandbox stopped (deadline, memory, trap). Answers the plugin chose (hook errors)
    /// are not failures.
    pub failures: u64,
    /// Instances created, including the first one at load.
    pub instances_created: u64,
}

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    failures: AtomicU64,
    instances_created: AtomicU64,
}

/// An instance with its store. Dropped, never reused, after any failed call.
struct Instance {
    store: Store<StoreState>,
    bindings: Plugin,
}

/// A call to one of the plugin's exports.
pub(crate) enum Call {
    Manifest,
    Handle(types::Request),
    PlanSearch { index: String, route: types::SearchRoute, request: String },
    MergeSearch { index: String, request: String, responses: Vec<types::ShardResponse> },
    AfterResponse { request: types::Request, response: types::Response, timing: types::Timing },
    OnWrite(types::WriteEvent),
    Tick,
}

impl Call {
    /// The export's name in the WIT, for metrics.
    fn hook_name(&self) -> &'static str {
        match self {
            Call::Manifest => "manifest",
            Call::Handle(_) => "handle",
            Call::PlanSearch { .. } => "plan-search",
            Call::MergeSearch { .. } => "merge-search",
            Call::AfterResponse { .. } => "after-response",
            Call::OnWrite(_) => "on-write",
            Call::Tick => "tick",
        }
    }
}

/// What a [`Call`] returned.
pub(crate) enum Output {
    Manifest(types::Manifest),
    Response(types::Response),
    Json(Result<String, types::HookError>),
    Plan(Result<types::SearchPlan, types::HookError>),
    Unit,
}

pub(crate) struct LoadedPlugin {
    pub context: PluginContext,
    pub memory_mb: u64,
    config_json: String,
    engine: Engine,
    pre: PluginPre<StoreState>,
    idle: Mutex<Vec<Instance>>,
    slots: Semaphore,
    counters: Counters,
}

impl LoadedPlugin {
    pub fn new(
        engine: Engine,
        pre: PluginPre<StoreState>,
        context: PluginContext,
        memory_mb: u64,
        config_json: String,
    ) -> Self {
        LoadedPlugin {
            context,
            memory_mb,
            config_json,
            engine,
            pre,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(MAX_CONCURRENT),
            counters: Counters::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.context.name
    }

    pub fn stats(&self) -> PluginStats {
        PluginStats {
            calls: self.counters.calls.load(Ordering::Relaxed),
            failures: self.counters.failures.load(Ordering::Relaxed),
            instances_created: self.counters.instances_created.load(Ordering::Relaxed),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        // Instances are only pushed and popped under the lock; a poisoned lock holds valid data.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh instance, `init` already called with the plugin's configuration.
    async fn instantiate(&self) -> wasmtime::Result<Instance> {
        let memory_bytes = usize::try_from(self.memory_mb << 20).unwrap_or(usize::MAX);
        let state =
            StoreState { context: self.context.clone(), limiter: MemoryLimiter::new(memory_bytes) };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Yield to the executor at every epoch tick, so that the call's timeout can fire even
        // while the guest computes without calling the host.
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let bindings = self.pre.instantiate_async(&mut store).await?;
        self.counters.instances_created.fetch_add(1, Ordering::Relaxed);
        bindings.miroir_plugin_hooks().call_init(&mut store, &self.config_json).await?.map_err(
            |message| wasmtime::format_err!("init refused the configuration: {message}"),
        )?;
        Ok(Instance { store, bindings })
    }

    /// Creates the first instance (so that a broken plugin fails at boot) and keeps it idle.
    pub async fn start(&self) -> Result<types::Manifest, PluginError> {
        match self.call(Call::Manifest).await? {
            Output::Manifest(manifest) => Ok(manifest),
            _ => Err(self.trapped("manifest returned something else")),
        }
    }

    fn trapped(&self, message: impl Into<String>) -> PluginError {
        PluginError::Trapped { plugin: self.name().to_owned(), message: message.into() }
    }

    /// Runs `call` in an instance, under the plugin's deadline and memory cap.
    pub async fn call(&self, call: Call) -> Result<Output, PluginError> {
        let _slot =
            self.slots.acquire().await.map_err(|_| self.trapped("the plugin was unloaded"))?;
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let hook = call.hook_name();
        let span = tracing::info_span!(
            "plugin_call",
            otel.name = %format_args!("plugin {} {hook}", self.name()),
            otel.status_code = tracing::field::Empty,
            plugin = self.name(),
            hook,
            outcome = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let result = self.call_in_instance(call).instrument(span.clone()).await;
        let failed = result.is_err();
        span.record("outcome", outcome(&result));
        if failed {
            span.record("otel.status_code", "ERROR");
        }
        self.context.host.record_call(self.name(), hook, started.elapsed(), failed);
        result
    }

    async fn call_in_instance(&self, call: Call) -> Result<Output, PluginError> {
        let pooled = self.idle().pop();
        let mut slot: Option<Instance> = pooled;
        let deadline = self.context.deadline;
        let outcome = tokio::time::timeout(deadline, async {
            let instance = match &mut slot {
                Some(instance) => instance,
                None => slot.insert(self.instantiate().await?),
            };
            instance.store.set_epoch_deadline(1);
            dispatch(instance, call).await
        })
        .await;
        match outcome {
            Ok(Ok(output)) => {
                if let Some(instance) = slot {
                    let mut idle = self.idle();
                    if idle.len() < MAX_IDLE {
                        idle.push(instance);
                    }
                }
                Ok(output)
            }
            Ok(Err(trap)) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                let exceeded = slot.as_ref().is_some_and(|i| i.store.data().limiter.exceeded());
                tracing::warn!(
                    plugin = self.name(),
                    error = format!("{trap:?}"),
                    "plugin call trapped"
                );
                // The instance is dropped with `slot`: a trapped instance cannot be entered again,
                // and the next call creates a fresh one from the pre-instantiated component.
                Err(if exceeded {
                    PluginError::MemoryExceeded {
                        plugin: self.name().to_owned(),
                        memory_mb: self.memory_mb,
                    }
                } else {
                    self.trapped(format!("{trap:#}"))
                })
            }
            Err(_elapsed) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    plugin = self.name(),
                    ?deadline,
                    "plugin call ran past its deadline"
                );
                Err(PluginError::DeadlineExceeded {
                    plugin: self.name().to_owned(),
                    deadline_ms: duration_ms(deadline),
                })
            }
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn dispatch(instance: &mut Instance, call: Call) -> wasmtime::Result<Output> {
    let hooks = instance.bindings.miroir_plugin_hooks();
    let store = &mut instance.store;
    Ok(match call {
        Call::Manifest => Output::Manifest(hooks.call_manifest(store).await?),
        Call::Handle(request) => Output::Response(hooks.call_handle(store, &request).await?),
        Call::PlanSearch { index, route, request } => {
            Output::Plan(hooks.call_plan_search(store, &index, route, &request).await?)
        }
        Call::MergeSearch { index, request, responses } => {
            Output::Json(hooks.call_merge_search(store, &index, &request, &responses).await?)
        }
        Call::AfterResponse { request, response, timing } => {
            hooks.call_after_response(store, &request, &response, timing).await?;
            Output::Unit
        }
        Call::OnWrite(event) => {
            hooks.call_on_write(store, &event).await?;
            Output::Unit
        }
        Call::Tick => {
            hooks.call_tick(store).await?;
            Output::Unit
        }
    })
}

/// How a call ended, as its span reports it.
fn outcome(result: &Result<Output, PluginError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(PluginError::DeadlineExceeded { .. }) => "deadline_exceeded",
        Err(PluginError::MemoryExceeded { .. }) => "memory_exceeded",
        Err(PluginError::Trapped { .. }) => "trapped",
        Err(PluginError::Rejected { .. }) => "rejected",
        Err(PluginError::NoRoute { .. }) => "no_route",
    }
}
