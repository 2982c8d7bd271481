//! Starting and stopping the HTTP server.
//!
//! Opens the task store the configuration names, builds `miroir-http`'s router (the one tower
//! stack and every Meilisearch route) and serves it until a signal, then drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use miroir_config::{Config, RateLimitBackend};
use miroir_http::{router_with, AppState};
use tokio::net::TcpListener;

use crate::gateway_metrics::GatewayCollector;

/// How often a running instance looks whether its task store was emptied.
const STORE_WATCH_EVERY: Duration = Duration::from_secs(1);

/// Runs the gateway until SIGINT or SIGTERM, then lets in-flight requests finish (for at most
/// `server.shutdown_timeout`).
pub fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    if config.secrets.master_key.is_none() {
        tracing::warn!("running without a master key: every route is open (development mode)");
    }
    let runtime =
        crate::runtime::Runtime::start(&config, crate::instance::instance_id(&config)).await?;
    if config.metrics.enabled {
        let metrics_address = SocketAddr::new(config.server.bind, config.metrics.port);
        let metrics_listener = TcpListener::bind(metrics_address)
            .await
            .with_context(|| format!("cannot listen on {metrics_address} for metrics"))?;
        let metrics_app = runtime.metrics_router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(metrics_listener, metrics_app).await {
                tracing::error!(%error, "the metrics server stopped");
            }
        });
    }
    let address = SocketAddr::new(config.server.bind, config.server.port);
    let listener =
        TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    tracing::info!(address = %local, config = %config.summary(), "miroir listening");

    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let state = AppState::new(config.clone(), Arc::clone(&runtime.store))
        .context("cannot set up the gateway")?;
    // The stored fleet (nodes added or removed while running) wins over the configured seed.
    miroir_http::fleet::load_or_seed(&state).await.context("cannot load the fleet")?;
    let following = tokio::spawn(miroir_http::fleet::follow(state.clone()));
    let rebalancing = miroir_http::fleet::rebalance::spawn(
        state.clone(),
        runtime.leader_state(),
        runtime.leader_lease().to_owned(),
    );
    runtime.metrics.register(Box::new(GatewayCollector::new(state.clone())));
    let waiting = state.clone();
    runtime.metrics.install_backlog(Box::new(move || waiting.background_backlog()));
    let node_durations = runtime.metrics.node_request_duration.clone();
    miroir_cluster::observe_node_requests(Box::new(move |node, route, elapsed| {
        node_durations.with_label_values(&[node.as_str(), route]).observe(elapsed.as_secs_f64());
    }));
    runtime.metrics.register(Box::new(crate::fleet_metrics::FleetCollector::new(state.clone())));
    // Index lifecycle, only with policies: every instance follows the backing indexes, the
    // leader rolls over and deletes.
    let lifecycle = (!config.ilm.policies.is_empty()).then(|| {
        runtime.metrics.register(Box::new(crate::ilm_metrics::IlmCollector::new(state.clone())));
        (
            miroir_http::ilm::lifecycle::follow(state.clone()),
            miroir_http::ilm::lifecycle::spawn(
                state.clone(),
                runtime.leader_state(),
                runtime.leader_lease().to_owned(),
            ),
        )
    });
    let prober = miroir_http::health::spawn_prober(state.clone());
    // While webhooks exist, tasks are brought up to date so their webhooks fire on time.
    let webhooks = miroir_http::webhooks::spawn_watcher(state.clone());
    // Checks the store against the catalog on the nodes now (restoring what a lost store
    // lacks), then watches for the store being emptied while Miroir runs.
    let recovery =
        tokio::spawn(miroir_http::store_recovery::watch(state.clone(), STORE_WATCH_EVERY));
    let drift = crate::drift::spawn(
        state.clone(),
        runtime.leader_state(),
        config.rebalancer.drift_check_interval.get(),
        runtime.metrics.settings_drift_repairs.clone(),
    );
    let repairs = crate::repair::spawn(
        state.clone(),
        runtime.leader_state(),
        config.rebalancer.drift_check_interval.get(),
    );
    for feature in config.unavailable_features() {
        tracing::warn!(
            feature,
            dir = %config.plugins.dir.display(),
            "{feature} is on by default but its component {feature}.wasm is not installed (not in \
             plugins.dir nor beside the binary): its routes answer miroir_plugin_unavailable; \
             install the first-party plugins or set {feature}.enabled: false"
        );
    }
    // With every plugin disabled this loads nothing and creates no wasmtime engine.
    let plugin_metrics = Arc::new(crate::plugin_metrics::PluginMetrics::new());
    let host = Arc::new(crate::plugins::GatewayHost {
        state: state.clone(),
        metrics: Arc::clone(&plugin_metrics),
    });
    let plugins = miroir_plugins::PluginRuntime::from_config(&config, host)
        .await
        .context("cannot load the enabled plugins")?;
    if !plugins.plugin_names().is_empty() {
        tracing::info!(plugins = ?plugins.plugin_names(), "plugins loaded");
    }
    let plugins = Arc::new(plugins);
    if plugins.engine_created() {
        runtime.metrics.register(Box::new(crate::plugin_metrics::PluginCollector(plugin_metrics)));
    }
    // Change capture, only when `cdc.enabled`: the writes' events, the long-poll reads, the sinks.
    let cdc = config.cdc.enabled.then(|| {
        let cdc =
            miroir_cdc::Cdc::start(&config.cdc, Arc::clone(&runtime.store), runtime.leader_state());
        state.install_change_feed(Arc::clone(&cdc.feed) as Arc<dyn miroir_types::ChangeFeed>);
        runtime
            .metrics
            .register(Box::new(crate::cdc_metrics::CdcCollector::new(Arc::clone(&cdc.feed))));
        cdc
    });
    // The shadow tee, only when `shadow.enabled`: sampled reads compared with its targets.
    if config.shadow.enabled {
        let tee = miroir_http::shadow::ShadowTee::start(&config.shadow);
        state.install_shadow(Arc::clone(&tee));
        runtime.metrics.register(Box::new(crate::shadow_metrics::ShadowCollector::new(tee)));
    }
    // The search page's shared buckets, when its rate limit counts in Redis.
    if config.search_ui.enabled && config.search_ui.rate_limit.backend == RateLimitBackend::Redis {
        state.install_rate_limiter(search_ui_buckets(&config).await?);
    }
    // The plugins' search, after-response and on-write hooks; `NoHooks` when none declares one.
    state.install_hooks(plugins.hook_port());
    // The `tick` hook of the plugins declaring it, on a task of its own; stops with `serve`.
    let _ticks = plugins.start_ticks(Duration::from_millis(config.plugins.tick_interval_ms));
    let plugin_routes = crate::plugins::plugin_routes(plugins);
    let app = router_with(state, plugin_routes.merge(runtime.admin_router())).layer(
        axum::middleware::from_fn_with_state(
            crate::metrics::RequestMetrics {
                in_flight: runtime.metrics.requests_in_flight.clone(),
                duration: runtime.metrics.request_duration.clone(),
            },
            crate::metrics::observe_request,
        ),
    );
    let settings = crate::listener::ListenerSettings {
        idle_timeout: config.server.idle_timeout.get(),
        open_connections: runtime.metrics.client_connections.clone(),
    };
    let server = crate::listener::serve(listener, app, settings, async move {
        shutdown_signal().await;
        // The receiver lives until `run` returns; a send error would only mean nobody waits.
        let _ = stopping_tx.send(true);
    });
    let grace: Duration = config.server.shutdown_timeout.get();
    let deadline = async move {
        // Resolves once the signal arrived and the grace period ran out.
        let _ = stopping_rx.changed().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = server => {}
        () = deadline => tracing::warn!(
            grace = %config.server.shutdown_timeout,
            "in-flight requests did not finish in time; stopping anyway"
        ),
    }
    tracing::debug!(instance = %runtime.instance_id, backend = runtime.store.backend(), "stopping");
    prober.abort();
    webhooks.abort();
    recovery.abort();
    drift.abort();
    following.abort();
    rebalancing.abort();
    repairs.abort();
    if let Some((follow, lead)) = lifecycle {
        follow.abort();
        lead.abort();
    }
    drop(cdc);
    runtime.shutdown().await;
    tracing::info!("miroir stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// The Redis buckets of the search page's rate limit (`search_ui.rate_limit.redis_url`, or the
/// task store's Redis), under the task store's key prefix.
async fn search_ui_buckets(config: &Config) -> anyhow::Result<Arc<dyn miroir_types::RateLimiter>> {
    let limit = &config.search_ui.rate_limit;
    let url = limit
        .redis_url
        .as_deref()
        .or(config.task_store.url.as_deref())
        .context("search_ui.rate_limit.backend is redis but no Redis URL is configured")?;
    let prefix = format!("{}ratelimit:", config.task_store.key_prefix);
    let buckets =
        miroir_store_redis::RedisBuckets::connect(url, &prefix, limit.per_ip, limit.burst)
            .await
            .context("cannot connect to the search page's rate-limit Redis")?;
    Ok(Arc::new(buckets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    async fn call(method: &str, path: &str) -> (StatusCode, serde_json::Value) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::default();
        config.task_store.path = dir.path().join("miroir.db");
        config.nodes.push(miroir_config::NodeConfig {
            id: "n1".parse().expect("id"),
            address: "http://127.0.0.1:9".into(),
            replica_group: Some("g".parse().expect("group")),
        });
        let store = crate::runtime::open_store(&config, Arc::new(miroir_store::NoMetrics))
            .await
            .expect("store");
        let state = AppState::new(config.clone(), store).expect("state");
        let request =
            Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
        let response =
            router_with(state, axum::Router::new()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json body"))
    }

    #[tokio::test]
    async fn health_is_available() {
        let (status, body) = call("GET", "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({ "status": "available" }));
    }

    #[tokio::test]
    async fn unknown_routes_get_a_meilisearch_error_object() {
        let (status, body) = call("POST", "/nothing/here").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
        assert_eq!(body["type"], "invalid_request");
        assert_eq!(body["link"], "https://docs.meilisearch.com/errors#not_found");
        assert_eq!(body["message"], "No route matches `POST /nothing/here`.");
    }
}
