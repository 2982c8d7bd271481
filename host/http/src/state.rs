//! Everything a request handler needs: configuration, topology, node clients, the task store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use miroir_cluster::{
    Assignment, Fleet, FleetError, HealthRegistry, HealthThresholds, HedgePolicy, NodeClients,
    NodeError, ReadView, ReplicaLoad, StaleReplicas, Topology, TopologyError,
};
use miroir_config::{Config, ReplicaSelection};
use miroir_store::TaskStore;
use miroir_types::{ChangeFeed, GroupId, HookPort, NoHooks};

use crate::auth::KeyCache;
use crate::convergence::IndexConvergence;
use crate::read_catalog::ReadCatalog;
use crate::read_stats::ReadStats;
use crate::store_recovery::Recovery;

/// Why the state cannot be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The nodes do not form a valid topology.
    #[error("invalid topology: {0}")]
    Topology(#[from] TopologyError),
    /// The HTTP client stack could not be set up.
    #[error("cannot build node clients: {0}")]
    Clients(#[from] NodeError),
    /// The configured nodes do not form a valid fleet.
    #[error("invalid fleet: {0}")]
    Fleet(#[from] FleetError),
}

/// One version of the fleet and everything derived from it: the topology of its members,
/// their clients, and the placement of each shard count (computed on first use).
pub struct FleetView {
    fleet: Fleet,
    topology: Arc<Topology>,
    clients: Arc<NodeClients>,
    assignments: Mutex<HashMap<u32, Arc<Assignment>>>,
}

impl FleetView {
    fn new(fleet: Fleet, clients: &NodeClients) -> Result<Self, TopologyError> {
        let topology = Arc::new(fleet.topology()?);
        let clients = Arc::new(
            clients.with_nodes(fleet.members().map(|n| (n.id.clone(), n.address.clone()))),
        );
        Ok(FleetView { fleet, topology, clients, assignments: Mutex::new(HashMap::new()) })
    }

    /// The fleet document this view was built from.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Clients for `nodes`, sharing this view's connection pool.
    pub fn clients_for(
        &self,
        nodes: impl IntoIterator<Item = (miroir_types::NodeId, String)>,
    ) -> NodeClients {
        self.clients.with_nodes(nodes)
    }

    /// The stored version of the fleet (0: seeded from the configuration, not stored yet).
    pub fn version(&self) -> u64 {
        self.fleet.version
    }
}

/// Shared, cheaply clonable application state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    fleet: RwLock<Arc<FleetView>>,
    health: Arc<HealthRegistry>,
    stale: StaleReplicas,
    load: ReplicaLoad,
    read_stats: ReadStats,
    read_catalog: ReadCatalog,
    recovery: Recovery,
    convergence: IndexConvergence,
    repair_status: crate::repair::RepairStatus,
    store: Arc<dyn TaskStore>,
    keys: KeyCache,
    rebalance_metrics: Arc<crate::fleet::RebalanceMetrics>,
    write_locks: Mutex<HashMap<String, Arc<crate::write_guard::IndexLock>>>,
    instance_tag: String,
    hooks: std::sync::OnceLock<Arc<dyn HookPort>>,
    change_feed: std::sync::OnceLock<Arc<dyn ChangeFeed>>,
    shadow: std::sync::OnceLock<Arc<crate::shadow::ShadowTee>>,
    search_ui: std::sync::OnceLock<crate::search_ui::Gate>,
    lifecycles: crate::ilm::Lifecycles,
    ilm_counters: crate::ilm::lifecycle::IlmCounters,
}

impl AppState {
    /// Builds the state for `config`, with `store` as the task store.
    pub fn new(config: Config, store: Arc<dyn TaskStore>) -> Result<Self, StateError> {
        let default_group = GroupId::new("default").expect("a valid literal group");
        let topology = Topology::new(
            config.nodes.iter().map(|n| {
                (n.id.clone(), n.replica_group.clone().unwrap_or_else(|| default_group.clone()))
            }),
            usize::try_from(config.replication_factor).unwrap_or(1),
        )?;
        let seed = Fleet::seed(
            config.nodes.iter().map(|n| {
                let group = n.replica_group.clone().unwrap_or_else(|| default_group.clone());
                (n.id.clone(), n.address.clone(), group)
            }),
            topology.replication_factor(),
        )?;
        // A node that answered a request within two probe intervals is alive (slow, not dead).
        let alive_window = config.health.interval.get().saturating_mul(2);
        let health = Arc::new(
            HealthRegistry::new(topology.nodes(), thresholds(&config))
                .with_alive_window(alive_window),
        );
        let clients = NodeClients::new(
            config.nodes.iter().map(|n| (n.id.clone(), n.address.clone())),
            config.secrets.node_master_key.as_ref().map(|k| k.expose().to_owned()),
            config.scatter.node_timeout.get(),
        )?
        .observed_by(Arc::clone(&health));
        let view = FleetView::new(seed, &clients)?;
        let instance_tag = instance_tag(&config);
        let load = replica_load(&config);
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                fleet: RwLock::new(Arc::new(view)),
                health,
                stale: StaleReplicas::default(),
                load,
                read_stats: ReadStats::default(),
                read_catalog: ReadCatalog::default(),
                recovery: Recovery::default(),
                convergence: IndexConvergence::default(),
                repair_status: crate::repair::RepairStatus::default(),
                store,
                keys: KeyCache::default(),
                rebalance_metrics: Arc::default(),
                write_locks: Mutex::new(HashMap::new()),
                instance_tag,
                hooks: std::sync::OnceLock::new(),
                change_feed: std::sync::OnceLock::new(),
                shadow: std::sync::OnceLock::new(),
                search_ui: std::sync::OnceLock::new(),
                lifecycles: crate::ilm::Lifecycles::default(),
                ilm_counters: crate::ilm::lifecycle::IlmCounters::default(),
            }),
        })
    }

    /// Installs the hook port (the plugins' hooks), once, after the plugins were loaded; `false`
    /// when one was installed already. Until then, and without one, every hook passes through.
    pub fn install_hooks(&self, port: Arc<dyn HookPort>) -> bool {
        self.inner.hooks.set(port).is_ok()
    }

    /// The hook port; [`NoHooks`] when none was installed.
    pub fn hooks(&self) -> &dyn HookPort {
        static NONE: NoHooks = NoHooks;
        match self.inner.hooks.get() {
            Some(port) => port.as_ref(),
            None => &NONE,
        }
    }

    /// Installs the change feed client writes are recorded into (`cdc.enabled`); once only:
    /// returns false when one was installed already.
    pub fn install_change_feed(&self, feed: Arc<dyn ChangeFeed>) -> bool {
        self.inner.change_feed.set(feed).is_ok()
    }

    /// The change feed, when change capture is on.
    pub fn change_feed(&self) -> Option<&Arc<dyn ChangeFeed>> {
        self.inner.change_feed.get()
    }

    /// Installs the shadow tee (`shadow.enabled`); once only.
    pub fn install_shadow(&self, tee: Arc<crate::shadow::ShadowTee>) -> bool {
        self.inner.shadow.set(tee).is_ok()
    }

    /// The shadow tee, when shadowing is on.
    pub fn shadow(&self) -> Option<&Arc<crate::shadow::ShadowTee>> {
        self.inner.shadow.get()
    }

    /// Installs the search page's rate limiter (`search_ui.rate_limit.backend: redis`), once,
    /// before serving; without one the page counts in this instance's memory.
    pub fn install_rate_limiter(&self, limiter: Arc<dyn miroir_types::RateLimiter>) -> bool {
        let gate = crate::search_ui::Gate::new(&self.config().search_ui, limiter);
        self.inner.search_ui.set(gate).is_ok()
    }

    /// The search page's gate (client address and rate limit).
    pub(crate) fn search_ui_gate(&self) -> &crate::search_ui::Gate {
        self.inner.search_ui.get_or_init(|| crate::search_ui::Gate::local(&self.config().search_ui))
    }

    /// Background work waiting: repairs pending (one per node and index) and shard moves of the
    /// open rebalance run not yet switched to their new owners.
    pub fn background_backlog(&self) -> u64 {
        let repairs: u64 = self.repair_status().pending().values().sum();
        let view = self.fleet();
        let moves = view.fleet().run.as_ref().map_or(0, |run| {
            let switched = run.count_at_least(miroir_cluster::MovePhase::Switched);
            run.moves.len().saturating_sub(switched)
        });
        repairs + moves as u64
    }

    /// What this instance knows of the index lifecycle policies' backing indexes.
    pub fn lifecycles(&self) -> &crate::ilm::Lifecycles {
        &self.inner.lifecycles
    }

    /// What the index lifecycle leader did (rollovers, deletions, failed checks).
    pub fn ilm_counters(&self) -> &crate::ilm::lifecycle::IlmCounters {
        &self.inner.ilm_counters
    }

    /// The installed hook port, to hand to a task of its own (off-path hooks).
    pub(crate) fn hooks_arc(&self) -> Option<Arc<dyn HookPort>> {
        self.inner.hooks.get().cloned()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The fleet as this instance follows it now (see [`crate::fleet`]).
    pub fn fleet(&self) -> Arc<FleetView> {
        Arc::clone(&self.inner.fleet.read().expect("fleet lock poisoned"))
    }

    /// Installs a newer version of the fleet: topology, clients, placement and health
    /// tracking follow. An older or equal version is ignored (returns false).
    pub fn install_fleet(&self, fleet: Fleet) -> Result<bool, TopologyError> {
        let current = self.fleet();
        if fleet.version <= current.version() && current.version() != 0 {
            return Ok(false);
        }
        self.install_fleet_version(fleet)
    }

    /// What rebalancing did on this instance (for metrics).
    pub fn rebalance_metrics(&self) -> &Arc<crate::fleet::RebalanceMetrics> {
        &self.inner.rebalance_metrics
    }

    /// The client of one member node (a cheap clone: clients share one connection pool).
    pub fn client(
        &self,
        node: &miroir_types::NodeId,
    ) -> Result<miroir_cluster::NodeClient, NodeError> {
        self.fleet().clients.get(node).cloned()
    }

    /// Installs `fleet` whatever its version (the store's versions started over after a loss).
    pub fn install_fleet_version(&self, fleet: Fleet) -> Result<bool, TopologyError> {
        let current = self.fleet();
        let view = FleetView::new(fleet, &current.clients)?;
        self.inner.health.track_only(view.topology.nodes());
        *self.inner.fleet.write().expect("fleet lock poisoned") = Arc::new(view);
        Ok(true)
    }

    /// The topology of the fleet's members.
    pub fn topology(&self) -> Arc<Topology> {
        Arc::clone(&self.fleet().topology)
    }

    /// The clients of the fleet's members.
    pub fn clients(&self) -> Arc<NodeClients> {
        Arc::clone(&self.fleet().clients)
    }

    /// What Miroir believes of each node's health (fed by [`crate::health::spawn_prober`]).
    pub fn health(&self) -> &HealthRegistry {
        &self.inner.health
    }

    /// The nodes recently found stale for an index (see [`miroir_cluster::StaleReplicas`]).
    pub fn stale(&self) -> &StaleReplicas {
        &self.inner.stale
    }

    /// The nodes' recent speed and load as reads saw them, and the hedging figures.
    pub fn replica_load(&self) -> &ReplicaLoad {
        &self.inner.load
    }

    /// How a read of `index` sees the nodes: health, stale marks, recent speed.
    pub fn read_view<'a>(&'a self, index: &'a str) -> ReadView<'a> {
        ReadView::new(&self.inner.health, &self.inner.stale, index).with_load(&self.inner.load)
    }

    /// What the search read path did (for metrics).
    pub fn read_stats(&self) -> &ReadStats {
        &self.inner.read_stats
    }

    /// Index metadata recently read by searches (see [`crate::read_catalog`]).
    pub fn read_catalog(&self) -> &ReadCatalog {
        &self.inner.read_catalog
    }

    /// What this instance knows of rebuilding the task store from the nodes.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// Which nodes hold which indexes with Miroir's settings, and which missed a creation
    /// (see [`crate::convergence`]).
    pub fn convergence(&self) -> &IndexConvergence {
        &self.inner.convergence
    }

    /// The index catalog and task sequence as routes use them: the store, kept in step with
    /// the copy on the nodes.
    pub fn catalog(&self) -> crate::catalog::Catalog<'_> {
        crate::catalog::Catalog { state: self }
    }

    /// What the repair worker and the metrics know of repairs (see [`crate::repair`]).
    pub fn repair_status(&self) -> &crate::repair::RepairStatus {
        &self.inner.repair_status
    }

    /// The task store.
    pub fn store(&self) -> &dyn TaskStore {
        self.inner.store.as_ref()
    }

    /// Known API keys.
    pub(crate) fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    /// The replication factor.
    pub fn replication_factor(&self) -> usize {
        self.fleet().fleet.replication_factor
    }

    /// The owners of a shard, in one group, that must accept a write (`write_quorum`).
    pub fn write_quorum_size(&self) -> usize {
        self.inner.config.write_quorum.owners_needed(self.replication_factor())
    }

    /// The placement of an index with `shards` shards in the current fleet (computed once per
    /// shard count and fleet version).
    pub fn assignment(&self, shards: u32) -> Arc<Assignment> {
        let view = self.fleet();
        let mut cache = view.assignments.lock().expect("assignment cache lock poisoned");
        Arc::clone(
            cache
                .entry(shards)
                .or_insert_with(|| Arc::new(view.fleet.assignment(&view.topology, shards))),
        )
    }

    /// A name unique to this instance, for the leases it takes.
    pub(crate) fn instance_tag(&self) -> &str {
        &self.inner.instance_tag
    }

    /// This instance's lock for writes to one index; see [`AppState::index_write_guard`], which
    /// also serializes writes across instances.
    pub(crate) fn write_lock(&self, index: &str) -> Arc<crate::write_guard::IndexLock> {
        let mut locks = self.inner.write_locks.lock().expect("write lock table poisoned");
        Arc::clone(locks.entry(index.to_owned()).or_default())
    }
}

/// Replica selection and hedging as `scatter` configures them.
fn replica_load(config: &Config) -> ReplicaLoad {
    let scatter = &config.scatter;
    let policy = HedgePolicy {
        enabled: scatter.hedging.enabled,
        budget: scatter.hedging.budget,
        min_delay: scatter.hedging.min_delay.get(),
        max_delay: scatter.node_timeout.get(),
    };
    ReplicaLoad::new(scatter.replica_selection == ReplicaSelection::Adaptive, policy)
}

fn thresholds(config: &Config) -> HealthThresholds {
    HealthThresholds {
        degraded_after: config.health.degraded_after,
        down_after: config.health.down_after,
        recover_after: config.health.recover_after,
    }
}

/// This process as a lease holder (see [`miroir_store::LeaseHolder`]): the instance id, host,
/// process id and incarnation, so a restarted instance recognises the leases it left.
fn instance_tag(config: &Config) -> String {
    let instance = config
        .instance_id
        .clone()
        .filter(|id| !id.is_empty())
        .or_else(|| std::env::var("POD_NAME").ok().filter(|id| !id.is_empty()))
        .unwrap_or_else(|| "miroir".to_owned());
    miroir_store::LeaseHolder::this_process(&instance).encode()
}
