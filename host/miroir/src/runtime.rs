//! What runs beside the HTTP routes: the task store chosen by the config, leader election on
//! it, the singleton work only the leader does, and the admin routes that report on them.

mod prune;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use miroir_config::{Config, TaskStoreBackend};
use miroir_store::prelude::*;
use miroir_store::{
    LeaderConfig, LeaderElector, LeaderHandle, LeaderState, LeaseHolder, SessionLimits,
    SharedMetrics,
};
use miroir_store_redis::{RedisConfig, RedisStore};
use miroir_store_sqlite::{SqliteConfig, SqliteStore};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, StoreLatency};
use prune::{prune_loop, PruneSettings};

/// How often every instance refreshes its gauges and purges expired keys.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);

/// The store, the election and the background loops of one running instance.
pub struct Runtime {
    pub instance_id: String,
    /// The task store, shared with the HTTP layer.
    pub store: Arc<dyn TaskStore>,
    pub metrics: Arc<Metrics>,
    leader: LeaderHandle,
    housekeeping: JoinHandle<()>,
    pruning: JoinHandle<()>,
    lease: String,
}

/// Open the task store the config names (created on first start for SQLite).
pub async fn open_store(
    config: &Config,
    metrics: SharedMetrics,
) -> anyhow::Result<Arc<dyn TaskStore>> {
    let sessions = SessionLimits { max_sessions: config.session_pinning.max_sessions };
    Ok(match config.task_store.backend {
        TaskStoreBackend::Sqlite => {
            let mut sqlite = SqliteConfig::new(&config.task_store.path);
            sqlite.sessions = sessions;
            // A corrupt file is kept aside and a new one started; the catalog and the task
            // sequence are then rebuilt from the nodes (`miroir_http::store_recovery`).
            let (store, _set_aside) =
                SqliteStore::open_setting_aside_corruption(sqlite).await.with_context(|| {
                    format!(
                        "cannot open the SQLite task store {}",
                        config.task_store.path.display()
                    )
                })?;
            Arc::new(store.with_metrics(metrics))
        }
        TaskStoreBackend::Redis => {
            let url =
                config.task_store.url.clone().context("task_store.url is required with redis")?;
            let mut redis = RedisConfig::new(url).with_prefix(config.task_store.key_prefix.clone());
            redis.sessions = sessions;
            let store = RedisStore::connect(redis)
                .await
                .context("cannot connect to the Redis task store")?;
            Arc::new(store.with_metrics(metrics))
        }
    })
}

impl Runtime {
    /// Open the store, join the leader election and start the housekeeping loop.
    pub async fn start(config: &Config, instance_id: String) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let store =
            open_store(config, Arc::new(StoreLatency(metrics.task_store_latency.clone()))).await?;
        // The holder names this process too, so after a crash the restarted instance releases
        // the lease its dead predecessor left instead of waiting for the TTL.
        let election = LeaderConfig::new(LeaseHolder::this_process(&instance_id).encode())
            .with_timing(config.leader.lease_ttl.get(), config.leader.renew_interval.get());
        let lease = election.lease_name.clone();
        let leader = LeaderElector::spawn(Arc::clone(&store), election);
        let housekeeping = tokio::spawn(housekeeping(
            Arc::clone(&store),
            Arc::clone(&metrics),
            leader.subscribe(),
        ));
        let pruning = tokio::spawn(prune_loop(
            Arc::clone(&store),
            Arc::clone(&metrics),
            leader.subscribe(),
            lease.clone(),
            PruneSettings::from_config(&config.task_store),
        ));
        tracing::info!(
            instance = %instance_id,
            backend = store.backend(),
            "task store open, joining leader election"
        );
        Ok(Self { instance_id, store, metrics, leader, housekeeping, pruning, lease })
    }

    /// The name of the leader lease, for fencing the leader's writes.
    pub fn leader_lease(&self) -> &str {
        &self.lease
    }

    /// This instance's view of the leader election, for leader-only loops.
    pub fn leader_state(&self) -> tokio::sync::watch::Receiver<LeaderState> {
        self.leader.subscribe()
    }

    /// `/_miroir/leader` and `/_miroir/metrics`. They join the gateway's routes, so the one
    /// request stack (the admin key on `/_miroir/*`, logs, traces, errors) serves them.
    pub fn admin_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let state = Arc::new(AdminState {
            instance_id: self.instance_id.clone(),
            leader: self.leader.subscribe(),
            metrics: Arc::clone(&self.metrics),
        });
        Router::new()
            .route("/_miroir/leader", get(leader_status))
            .route("/_miroir/metrics", get(admin_metrics))
            .with_state(state)
    }

    /// The metrics port's router: `/metrics`, unauthenticated, as Prometheus scrapes it.
    pub fn metrics_router(&self) -> Router {
        let metrics = Arc::clone(&self.metrics);
        Router::new().route("/metrics", get(move || async move { exposition(&metrics) }))
    }

    /// Stop the background loops and hand the lease over.
    pub async fn shutdown(self) {
        self.housekeeping.abort();
        self.pruning.abort();
        if let Err(error) = self.leader.release().await {
            tracing::warn!(%error, "could not release the leader lease; it expires by itself");
        }
    }
}

struct AdminState {
    instance_id: String,
    leader: tokio::sync::watch::Receiver<LeaderState>,
    metrics: Arc<Metrics>,
}

async fn leader_status(State(state): State<Arc<AdminState>>) -> Response {
    let now = state.leader.borrow().clone();
    Json(serde_json::json!({
        "instance": state.instance_id,
        "is_leader": now.is_leader,
        "leader": now.leader_id,
        "fencing_token": now.fencing_token,
    }))
    .into_response()
}

async fn admin_metrics(State(state): State<Arc<AdminState>>) -> Response {
    exposition(&state.metrics)
}

fn exposition(metrics: &Metrics) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()).into_response()
}

/// Every instance refreshes its gauges and purges expired keys (pruning old tasks is the
/// leader's, in [`prune`]).
async fn housekeeping(
    store: Arc<dyn TaskStore>,
    metrics: Arc<Metrics>,
    mut leader: tokio::sync::watch::Receiver<LeaderState>,
) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        // A change of leadership updates `miroir_is_leader` at once; the rest waits for the tick.
        tokio::select! {
            _ = tick.tick() => {}
            changed = leader.changed() => {
                if changed.is_err() {
                    return;
                }
                let is_leader = leader.borrow_and_update().is_leader;
                metrics.is_leader.set(i64::from(is_leader));
                continue;
            }
        }
        let is_leader = leader.borrow().is_leader;
        metrics.is_leader.set(i64::from(is_leader));
        if let Ok(depth) = store.job_depth().await {
            metrics.set_store_jobs(depth.queued + depth.claimed);
        }
        if let Ok(keys) = store.idempotency_count().await {
            metrics.idempotency_cache_entries.set(i64::try_from(keys).unwrap_or(i64::MAX));
        }
        if let Ok(sessions) = store.session_count().await {
            metrics
                .session_pinning_active_sessions
                .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        }
        if let Err(error) = store.purge_expired().await {
            tracing::warn!(%error, "purging expired keys failed");
        }
    }
}
