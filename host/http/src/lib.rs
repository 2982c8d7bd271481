//! Miroir's HTTP edge.
//!
//! This crate owns the server side of the gateway: the one tower stack every request passes
//! through ([`stack`]: request id, tracing, [`admission`], body limit, [`auth`]), the
//! Meilisearch routes Miroir serves (indexes, documents, settings, tasks, keys), and
//! [`error::HttpError`], the single place an error becomes a response. It decides *what* to send
//! to which nodes using `miroir-cluster` (placement, quorum, node clients) and records tasks,
//! index metadata and idempotency keys in the task store (`miroir-store`). It does not own the
//! listener's lifecycle (the `miroir` binary does) nor the search merge (the read path).
//!
//! [`router`] builds the whole application for an [`AppState`]; tests call it without a socket
//! or serve it on `127.0.0.1:0`.

pub mod admission;
pub mod after_response;
pub mod auth;
mod backups;
pub mod body;
pub mod bookkeeping;
pub mod catalog;
mod changes;
mod cluster_status;
pub mod convergence;
mod default_keys;
pub mod documents;
pub mod error;
mod experimental;
mod export;
pub mod fanout;
pub mod federated;
mod fields;
pub mod fleet;
pub mod health;
pub mod idempotency;
pub mod ilm;
mod index_rename;
mod indexes;
mod keys;
mod leading;
pub mod node_catalog;
mod passthrough;
pub mod read_catalog;
pub mod read_stats;
pub mod repair;
pub mod repairs;
mod reserved_names;
pub mod search;
mod search_hooks;
pub mod search_ui;
pub mod session;
pub mod settings;
pub mod shadow;
pub mod shard_sync;
mod similar;
pub mod stack;
mod state;
mod stats;
pub mod store_recovery;
mod task_metadata;
pub mod tasks;
mod unserved;
pub mod webhooks;
mod write_guard;
mod write_hooks;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceBuilder;

pub use error::{HttpError, HttpResult};
pub use state::{AppState, FleetView, StateError};
pub use write_guard::IndexWriteGuard;

/// The whole application: every route behind the one stack.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application with `extra` routes (plugin routes) behind the same stack.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let max_body = usize::try_from(state.config().server.max_body_bytes).unwrap_or(usize::MAX);
    let admission = admission::Admission::new(&state.config().server);
    let routes = Router::new()
        .route("/health", get(passthrough::health))
        .route("/_miroir/ready", get(cluster_status::ready))
        .route("/_miroir/changes", get(changes::changes))
        .route("/_miroir/shadow/diff", get(shadow::diff_route))
        .route("/_miroir/shadow/summary", get(shadow::summary_route))
        .route("/_miroir/topology", get(cluster_status::topology))
        .route("/_miroir/ilm", get(ilm::status))
        .route("/_miroir/shards", get(cluster_status::shards))
        .route("/_miroir/nodes", get(fleet::routes::list_nodes).post(fleet::routes::add_node))
        .route("/_miroir/nodes/{id}", axum::routing::delete(fleet::routes::remove_node))
        .route("/_miroir/nodes/{id}/drain", post(fleet::routes::drain_node))
        .route("/_miroir/rebalance/status", get(fleet::routes::status))
        .route("/_miroir/rebalance/pause", post(fleet::routes::pause))
        .route("/_miroir/rebalance/resume", post(fleet::routes::resume))
        .route("/version", get(passthrough::forward))
        .route("/stats", get(stats::global_stats))
        .route(
            "/experimental-features",
            get(experimental::get_features).patch(experimental::patch_features),
        )
        .route("/network", get(experimental::network).patch(experimental::network))
        .route("/keys", get(keys::read_keys).post(keys::create_key))
        .route("/keys/{key}", get(keys::read_keys).patch(keys::update_key).delete(keys::delete_key))
        .route("/indexes", get(indexes::list_indexes).post(indexes::create_index))
        .route(
            "/indexes/{uid}",
            get(indexes::get_index).patch(indexes::update_index).delete(indexes::delete_index),
        )
        .route("/swap-indexes", post(indexes::swap_indexes))
        .route(
            "/indexes/{uid}/settings",
            get(settings::get_all).patch(settings::update_all).delete(settings::reset_all),
        )
        .route(
            "/indexes/{uid}/settings/{segment}",
            get(settings::get_one)
                .put(settings::update_one)
                .patch(settings::update_one)
                .post(settings::update_one)
                .delete(settings::reset_one),
        )
        .route(
            "/indexes/{uid}/documents",
            get(documents::browse_get)
                .post(documents::add_or_replace)
                .put(documents::add_or_update)
                .delete(documents::delete_all),
        )
        .route("/indexes/{uid}/documents/fetch", post(documents::browse_post))
        .route("/indexes/{uid}/documents/delete-batch", post(documents::delete_batch))
        .route("/indexes/{uid}/documents/delete", post(documents::delete_by_filter))
        .route("/indexes/{uid}/documents/edit", post(documents::edit_by_function))
        .route(
            "/indexes/{uid}/documents/{id}",
            get(documents::get_document).delete(documents::delete_document),
        )
        .route("/indexes/{uid}/stats", get(stats::index_stats))
        .route("/indexes/{uid}/compact", post(backups::compact_index))
        .route("/indexes/{uid}/fields", post(fields::list_fields))
        .route("/indexes/{uid}/search", get(search::search_get).post(search::search_post))
        .route("/indexes/{uid}/facet-search", post(search::facet_search))
        .route("/indexes/{uid}/similar", get(similar::similar_get).post(similar::similar_post))
        .route("/tasks", get(tasks::routes::list_tasks).delete(tasks::routes::delete_tasks))
        .route("/tasks/cancel", post(tasks::routes::cancel_tasks))
        .route("/tasks/{uid}", get(tasks::routes::get_task))
        .route("/webhooks", get(webhooks::list_webhooks).post(webhooks::create_webhook))
        .route(
            "/webhooks/{uuid}",
            get(webhooks::get_webhook)
                .patch(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route("/dumps", post(backups::create_dump))
        .route("/snapshots", post(backups::create_snapshot))
        .route("/batches", get(tasks::batches::list_batches))
        .route("/batches/{uid}", get(tasks::batches::get_batch))
        .route("/_miroir/indexes/{uid}/documents/export", get(export::export_documents))
        .route("/_indexes/{uid}/documents/export", get(export::export_documents))
        .route("/_miroir/indexes/{uid}/export/settings", get(export::export_settings))
        .merge(search_ui::routes(&state))
        .merge(extra)
        .fallback(unserved::fallback);
    let aliases = (!state.config().ilm.policies.is_empty()).then(|| state.clone());
    let app = routes
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(stack::observe))
                .layer(middleware::from_fn_with_state(admission, admission::admit))
                .layer(middleware::from_fn_with_state(state.clone(), stack::limit_body))
                .layer(DefaultBodyLimit::max(max_body))
                .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
                .layer(middleware::from_fn_with_state(state.clone(), task_metadata::capture))
                .layer(middleware::from_fn_with_state(state.clone(), after_response::deliver)),
        )
        .with_state(state);
    match aliases {
        // Index lifecycle aliases are resolved before routing (see `ilm::rewrite`).
        Some(state) => Router::new().fallback_service(tower::ServiceExt::map_request(
            app,
            move |request: axum::extract::Request| ilm::rewrite(&state, request),
        )),
        None => app,
    }
}
