//! The plugin runtime the gateway holds: loading from configuration, routes, hook dispatch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use miroir_config::Config;
use miroir_types::{SearchPlan, SearchRoute};
use serde_json::Value;
use wasmtime::component::Linker;
use wasmtime::Engine;

use crate::bindings::{types, PluginPre};
use crate::error::{LoadError, PluginError};
use crate::host::{PluginHost, ShardAnswer};
use crate::imports::{PluginContext, StoreState};
use crate::instance::{Call, LoadedPlugin, Output, PluginStats};
use crate::spec::{origins, PluginSpec};
use crate::{bindings, cache, wasi};

/// How often the engine's epoch advances: the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

static ENGINES_CREATED: AtomicUsize = AtomicUsize::new(0);

/// How many wasmtime engines this process has created, by any [`PluginRuntime`].
pub fn engines_created_in_process() -> usize {
    ENGINES_CREATED.load(Ordering::SeqCst)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, LoadError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("miroir-plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Loaded {
    plugins: Vec<Arc<LoadedPlugin>>,
    manifests: Vec<types::Manifest>,
    routes: HashMap<(String, String), usize>,
    _ticker: EpochTicker,
}

/// What happened when an off-path hook (`after-response`, `on-write`, `tick`) was delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffPathReport {
    /// Plugins called.
    pub called: usize,
    /// Their failures, counted in their stats and logged; never seen by the client.
    pub failures: Vec<PluginError>,
}

/// The task calling `tick` on a timer ([`PluginRuntime::start_ticks`]); stops when dropped.
#[derive(Debug)]
pub struct TickTask(tokio::task::JoinHandle<()>);

impl Drop for TickTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The loaded plugins. With no plugin enabled it holds nothing, and no wasmtime engine exists.
pub struct PluginRuntime {
    loaded: Option<Loaded>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("plugins", &self.plugin_names())
            .field("engine_created", &self.engine_created())
            .finish()
    }
}

impl PluginRuntime {
    /// A runtime with no plugin.
    pub fn disabled() -> Self {
        PluginRuntime { loaded: None }
    }

    /// Loads every plugin `config` enables (see [`PluginSpec::from_config`]).
    pub async fn from_config(
        config: &Config,
        host: Arc<dyn PluginHost>,
    ) -> Result<Self, LoadError> {
        PluginRuntime::load(PluginSpec::from_config(config)?, host).await
    }

    /// Loads `specs`: compiles (or loads the cached artifact of) each component, links the host
    /// interface, pre-instantiates it, creates a first instance, calls `init` and `manifest`,
    /// and registers the routes. With no spec, creates nothing at all.
    pub async fn load(
        specs: Vec<PluginSpec>,
        host: Arc<dyn PluginHost>,
    ) -> Result<Self, LoadError> {
        if specs.is_empty() {
            return Ok(PluginRuntime::disabled());
        }
        let engine = new_engine()?;
        let ticker = EpochTicker::start(engine.clone())?;
        let mut plugins = Vec::new();
        let mut manifests = Vec::new();
        let mut routes: HashMap<(String, String), usize> = HashMap::new();
        for spec in specs {
            let plugin = load_one(&engine, spec, Arc::clone(&host))?;
            let manifest = plugin.start().await.map_err(|e| LoadError::Start {
                plugin: plugin.name().to_owned(),
                message: e.to_string(),
            })?;
            let position = plugins.len();
            for route in &manifest.routes {
                let key = (route.method.to_ascii_uppercase(), route.path.clone());
                if let Some(&first) = routes.get(&key) {
                    let first: &Arc<LoadedPlugin> = &plugins[first];
                    return Err(LoadError::RouteConflict {
                        method: key.0,
                        path: key.1,
                        first: first.name().to_owned(),
                        second: plugin.name().to_owned(),
                    });
                }
                routes.insert(key, position);
            }
            tracing::info!(
                plugin = plugin.name(),
                version = %manifest.version,
                routes = manifest.routes.len(),
                hooks = ?manifest.hooks,
                "plugin loaded"
            );
            plugins.push(Arc::new(plugin));
            manifests.push(manifest);
        }
        Ok(PluginRuntime { loaded: Some(Loaded { plugins, manifests, routes, _ticker: ticker }) })
    }

    /// Whether this runtime created a wasmtime engine: `false` exactly when no plugin is enabled.
    pub fn engine_created(&self) -> bool {
        self.loaded.is_some()
    }

    /// The names of the loaded plugins, in load order.
    pub fn plugin_names(&self) -> Vec<&str> {
        self.loaded.iter().flat_map(|l| l.plugins.iter().map(|p| p.name())).collect()
    }

    /// The manifest of plugin `name`.
    pub fn manifest(&self, name: &str) -> Option<&types::Manifest> {
        let loaded = self.loaded.as_ref()?;
        let position = loaded.plugins.iter().position(|p| p.name() == name)?;
        loaded.manifests.get(position)
    }

    /// Every route a plugin serves, with the plugin's name.
    pub fn routes(&self) -> Vec<(types::Route, &str)> {
        let Some(loaded) = &self.loaded else { return Vec::new() };
        loaded
            .manifests
            .iter()
            .zip(&loaded.plugins)
            .flat_map(|(m, p)| m.routes.iter().map(move |r| (r.clone(), p.name())))
            .collect()
    }

    /// The plugin serving `method path`, if any.
    pub fn route_owner(&self, method: &str, path: &str) -> Option<&str> {
        let loaded = self.loaded.as_ref()?;
        let position = loaded.routes.get(&(method.to_ascii_uppercase(), path.to_owned()))?;
        Some(loaded.plugins[*position].name())
    }

    /// Whether some plugin implements `hook`.
    pub fn has_hook(&self, hook: types::Hook) -> bool {
        self.with_hook(hook).next().is_some()
    }

    /// The counters of plugin `name`.
    pub fn stats(&self, name: &str) -> Option<PluginStats> {
        self.loaded.as_ref()?.plugins.iter().find(|p| p.name() == name).map(|p| p.stats())
    }

    fn with_hook(&self, hook: types::Hook) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.loaded.iter().flat_map(move |l| {
            l.plugins
                .iter()
                .zip(&l.manifests)
                .filter(move |(_, m)| m.hooks.contains(&hook))
                .map(|(p, _)| p)
        })
    }

    /// Serves `request` with the plugin that claims its method and path.
    pub async fn handle(&self, request: types::Request) -> Result<types::Response, PluginError> {
        let no_route =
            || PluginError::NoRoute { method: request.method.clone(), path: request.path.clone() };
        let loaded = self.loaded.as_ref().ok_or_else(no_route)?;
        let key = (request.method.to_ascii_uppercase(), request.path.clone());
        let position = *loaded.routes.get(&key).ok_or_else(no_route)?;
        match loaded.plugins[position].call(Call::Handle(request)).await? {
            Output::Response(response) => Ok(response),
            _ => Err(unexpected(&loaded.plugins[position])),
        }
    }

    /// Decides who serves a search (see [`miroir_types::HookPort::plan_search`]): the plugins
    /// declaring `plan-search` or `merge-search`, in load order and without `caller` (the plugin
    /// running this search through its own `search` import), are asked until one does not
    /// decline. A plugin declaring `merge-search` alone takes every search, unchanged.
    pub async fn plan_search(
        &self,
        index: &str,
        route: SearchRoute,
        request: &Value,
        caller: Option<&str>,
    ) -> Result<SearchPlan, PluginError> {
        let Some(loaded) = &self.loaded else { return Ok(SearchPlan::Decline) };
        let mut text: Option<String> = None;
        for (plugin, manifest) in loaded.plugins.iter().zip(&loaded.manifests) {
            if caller == Some(plugin.name()) {
                continue;
            }
            let merges = manifest.hooks.contains(&types::Hook::MergeSearch);
            let merged_by = merges.then(|| plugin.name().to_owned());
            if !manifest.hooks.contains(&types::Hook::PlanSearch) {
                if merges && route == SearchRoute::Search {
                    return Ok(SearchPlan::Rewrite { request: request.clone(), merged_by });
                }
                continue;
            }
            let request_text = text.get_or_insert_with(|| request.to_string()).clone();
            let call = Call::PlanSearch {
                index: index.to_owned(),
                route: match route {
                    SearchRoute::Search => types::SearchRoute::Search,
                    SearchRoute::Similar => types::SearchRoute::Similar,
                },
                request: request_text,
            };
            let plan = match plugin.call(call).await? {
                Output::Plan(Ok(plan)) => plan,
                Output::Plan(Err(e)) => return Err(rejected(plugin, e)),
                _ => return Err(unexpected(plugin)),
            };
            return Ok(match plan {
                types::SearchPlan::Decline => continue,
                types::SearchPlan::Rewrite(json) => SearchPlan::Rewrite {
                    request: parse_json(plugin, &json)?,
                    // `merge-search` merges search answers; a `similar` is merged by the host.
                    merged_by: merged_by.filter(|_| route == SearchRoute::Search),
                },
                types::SearchPlan::Answer(answer) => SearchPlan::Answer {
                    body: parse_json(plugin, &answer.body)?,
                    headers: answer.headers,
                },
            });
        }
        Ok(SearchPlan::Decline)
    }

    /// Merges `responses` with the `merge-search` of plugin `name`; `None` when no such plugin
    /// declares it, and the gateway's own merge applies.
    pub async fn merge_search(
        &self,
        name: &str,
        index: &str,
        request: &Value,
        responses: &[ShardAnswer],
    ) -> Option<Result<Value, PluginError>> {
        let plugin = self.with_hook(types::Hook::MergeSearch).find(|p| p.name() == name)?;
        let responses = responses
            .iter()
            .map(|a| types::ShardResponse {
                shard: a.shard,
                node: a.node.clone(),
                status: a.status,
                body: a.body.to_string(),
                took_us: u64::try_from(a.took.as_micros()).unwrap_or(u64::MAX),
            })
            .collect();
        let call =
            Call::MergeSearch { index: index.to_owned(), request: request.to_string(), responses };
        Some(match plugin.call(call).await {
            Ok(output) => json_output(plugin, output),
            Err(e) => Err(e),
        })
    }

    /// Delivers a finished read to every plugin declaring `after-response`. Failures are counted
    /// and logged, never returned to a client: call this after the response was sent.
    pub async fn after_response(
        &self,
        request: &types::Request,
        response: &types::Response,
        timing: types::Timing,
    ) -> OffPathReport {
        self.off_path(types::Hook::AfterResponse, || Call::AfterResponse {
            request: request.clone(),
            response: response.clone(),
            timing,
        })
        .await
    }

    /// Delivers a write that reached quorum to every plugin declaring `on-write`.
    pub async fn on_write(&self, event: &types::WriteEvent) -> OffPathReport {
        self.off_path(types::Hook::OnWrite, || Call::OnWrite(event.clone())).await
    }

    /// Calls `tick` on every plugin declaring it.
    pub async fn tick(&self) -> OffPathReport {
        self.off_path(types::Hook::Tick, || Call::Tick).await
    }

    /// Calls [`PluginRuntime::tick`] every `interval` on a task of its own, off every client's
    /// path, until the returned handle is dropped. A tick that traps or runs past the deadline is
    /// counted in the plugin's [`PluginStats::failures`] and logged, and the next tick still
    /// comes. `None` (and no task) when no loaded plugin declares `tick`. Must be called inside a
    /// tokio runtime.
    pub fn start_ticks(self: &Arc<Self>, interval: Duration) -> Option<TickTask> {
        if !self.has_hook(types::Hook::Tick) {
            return None;
        }
        let runtime = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut timer = tokio::time::interval(interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick of an interval completes at once: skip it so the first call comes
            // one interval after start.
            timer.tick().await;
            loop {
                timer.tick().await;
                runtime.tick().await;
            }
        });
        Some(TickTask(task))
    }

    async fn off_path(&self, hook: types::Hook, call: impl Fn() -> Call) -> OffPathReport {
        let mut report = OffPathReport::default();
        for plugin in self.with_hook(hook) {
            report.called += 1;
            if let Err(e) = plugin.call(call()).await {
                tracing::warn!(plugin = plugin.name(), ?hook, error = %e, "plugin hook failed");
                report.failures.push(e);
            }
        }
        report
    }
}

fn unexpected(plugin: &LoadedPlugin) -> PluginError {
    PluginError::Trapped {
        plugin: plugin.name().to_owned(),
        message: "the export returned an unexpected value".into(),
    }
}

fn json_output(plugin: &LoadedPlugin, output: Output) -> Result<Value, PluginError> {
    match output {
        Output::Json(Ok(text)) => parse_json(plugin, &text),
        Output::Json(Err(e)) => Err(rejected(plugin, e)),
        _ => Err(unexpected(plugin)),
    }
}

fn parse_json(plugin: &LoadedPlugin, text: &str) -> Result<Value, PluginError> {
    serde_json::from_str(text).map_err(|e| PluginError::Trapped {
        plugin: plugin.name().to_owned(),
        message: format!("the plugin answered invalid JSON: {e}"),
    })
}

fn rejected(plugin: &LoadedPlugin, e: types::HookError) -> PluginError {
    PluginError::Rejected {
        plugin: plugin.name().to_owned(),
        status: e.status,
        code: e.code,
        message: e.message,
    }
}

fn new_engine() -> Result<Engine, LoadError> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    let engine = Engine::new(&config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
    ENGINES_CREATED.fetch_add(1, Ordering::SeqCst);
    Ok(engine)
}

fn load_one(
    engine: &Engine,
    spec: PluginSpec,
    host: Arc<dyn PluginHost>,
) -> Result<LoadedPlugin, LoadError> {
    let component = cache::load_component(engine, &spec.name, &spec.component)?;
    let link_error = |e: wasmtime::Error| LoadError::Link {
        plugin: spec.name.clone(),
        message: format!("{e:#}"),
    };
    let foreign = wasi::foreign_imports(engine, &component);
    if !foreign.is_empty() {
        return Err(LoadError::Link {
            plugin: spec.name.clone(),
            message: format!(
                "it imports {} which Miroir does not provide (rebuild it against \
                 miroir:plugin@{})",
                foreign.join(", "),
                wasi::PACKAGE_VERSION
            ),
        });
    }
    let mut linker: Linker<StoreState> = Linker::new(engine);
    bindings::Plugin::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(
        &mut linker,
        |state| state,
    )
    .map_err(link_error)?;
    wasi::link(&mut linker, &component).map_err(link_error)?;
    let pre = linker.instantiate_pre(&component).map_err(link_error)?;
    let pre = PluginPre::new(pre).map_err(link_error)?;
    let http_targets = origins(&spec.name, &spec.http_targets)?;
    let config_json = spec.config.to_string();
    let context = PluginContext {
        name: spec.name.as_str().into(),
        deadline: spec.deadline,
        http_targets: http_targets.into(),
        host,
    };
    Ok(LoadedPlugin::new(engine.clone(), pre, context, spec.memory_mb, config_json))
}
