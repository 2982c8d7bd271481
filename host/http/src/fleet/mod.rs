//! The live fleet as the task store keeps it: loaded (or seeded from the configured `nodes:`) at
//! start, followed by every instance, changed with compare-and-set by the admin routes
//! ([`routes`]) and by the leader's rebalance ([`rebalance`]).
//!
//! The fleet is one versioned document (`fleet`) among the store's rebalance records; finished
//! runs are kept beside it as `run-<id>`. Every instance re-reads it every [`FOLLOW_EVERY`] and
//! records the version it follows ([`followers`]); the rebalance waits for every live instance
//! to follow each phase change before relying on it.

pub mod followers;
pub mod keys;
pub mod rebalance;
pub mod routes;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use miroir_cluster::{Fleet, FleetError, Run};
use miroir_store::{Fence, StoreError};
use miroir_types::{ApiError, ErrorCode};

use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// The store record holding the fleet.
pub const FLEET_RECORD: &str = "fleet";

/// How often every instance re-reads the fleet.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// What rebalancing did on this instance, for metrics.
#[derive(Debug, Default)]
pub struct RebalanceMetrics {
    documents_copied: AtomicU64,
}

impl RebalanceMetrics {
    /// Counts `n` documents copied to a new owner.
    pub fn copied(&self, n: u64) {
        self.documents_copied.fetch_add(n, Ordering::Relaxed);
    }

    /// Documents copied by this instance since it started.
    pub fn documents_copied(&self) -> u64 {
        self.documents_copied.load(Ordering::Relaxed)
    }
}

/// The record of a finished run.
pub fn run_record(id: u64) -> String {
    format!("run-{id:08}")
}

/// Loads the stored fleet, or stores the one the configuration seeded (first start), and
/// installs it. Configured nodes the stored fleet lacks are reported: after the first start the
/// fleet changes through `/_miroir/nodes` only.
pub async fn load_or_seed(state: &AppState) -> HttpResult<()> {
    let seed = state.fleet().fleet().clone();
    let fleet = match load(state).await? {
        Some(stored) => stored,
        None => {
            // A task store that was lost: the copy kept on the nodes wins over the seed.
            let kept = kept_on_nodes(state).await;
            if kept.is_some() {
                tracing::warn!("the task store has no fleet; restored the copy kept on the nodes");
            }
            let doc = match kept {
                Some(doc) => doc,
                None => to_doc(&seed)?,
            };
            match state.store().save_rebalance(FLEET_RECORD, 0, &doc, None).await {
                Ok(version) => {
                    let fleet: Fleet = serde_json::from_value(doc).map_err(|e| {
                        HttpError::Internal(format!("the fleet is unreadable: {e}"))
                    })?;
                    publish(state, &fleet).await;
                    Fleet { version, ..fleet }
                }
                Err(StoreError::Conflict(_)) => load(state).await?.ok_or_else(|| {
                    HttpError::Internal("the fleet record vanished while seeding".into())
                })?,
                Err(error) => return Err(error.into()),
            }
        }
    };
    for node in &seed.nodes {
        match fleet.node(&node.id) {
            None => tracing::warn!(node = %node.id,
                "configured node is not in the stored fleet; add it with POST /_miroir/nodes"),
            Some(stored) if stored.address != node.address => tracing::warn!(node = %node.id,
                configured = %node.address, stored = %stored.address,
                "configured address differs from the stored fleet's; the stored one is used"),
            Some(_) => {}
        }
    }
    install(state, fleet)?;
    Ok(())
}

/// Re-reads the fleet and installs it when it changed; returns whether it did. A store that
/// lost the fleet while Miroir runs gets this instance's copy back.
pub async fn refresh(state: &AppState) -> HttpResult<bool> {
    match load(state).await? {
        Some(fleet) => install(state, fleet),
        None => {
            let current = state.fleet().fleet().clone();
            let doc = to_doc(&current)?;
            match state.store().save_rebalance(FLEET_RECORD, 0, &doc, None).await {
                Ok(version) => {
                    tracing::warn!("the task store lost the fleet; stored this instance's copy");
                    install_restored(state, Fleet { version, ..current })
                }
                Err(StoreError::Conflict(_)) => Ok(false),
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// Follows the stored fleet for as long as the instance runs.
pub async fn follow(state: AppState) {
    loop {
        match refresh(&state).await {
            Ok(_) => {
                if let Err(error) = followers::record(&state).await {
                    tracing::warn!(%error, "cannot record the fleet version this instance follows");
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the fleet from the task store"),
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// Applies `change` to the stored fleet with compare-and-set (retried on a concurrent change),
/// installs the result here, and returns what `change` returned. With `fence`, the save fails
/// once this instance no longer leads.
pub async fn update<R>(
    state: &AppState,
    fence: Option<&Fence>,
    mut change: impl FnMut(&mut Fleet) -> Result<R, FleetError>,
) -> HttpResult<R> {
    for _ in 0..20 {
        let mut fleet = match load(state).await? {
            Some(fleet) => fleet,
            // The store lost the record: start it again from this instance's copy.
            None => Fleet { version: 0, ..state.fleet().fleet().clone() },
        };
        let (nodes_before, run_before) = (fleet.nodes.clone(), fleet.run.is_some());
        let result = change(&mut fleet).map_err(fleet_error)?;
        let reshaped = fleet.nodes != nodes_before || fleet.run.is_some() != run_before;
        fleet.topology().map_err(|e| fleet_error(e.into()))?;
        let doc = to_doc(&fleet)?;
        match state.store().save_rebalance(FLEET_RECORD, fleet.version, &doc, fence).await {
            Ok(version) => {
                if reshaped {
                    publish(state, &fleet).await;
                }
                install_restored(state, Fleet { version, ..fleet })?;
                // Followed here at once: waiting for every instance (this one included) to
                // follow the change need not wait for this instance's next follow round.
                if let Err(error) = followers::record(state).await {
                    tracing::warn!(%error, "cannot record the fleet version this instance follows");
                }
                return Ok(result);
            }
            Err(StoreError::Conflict(_)) if fence.is_none() => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(HttpError::Internal("the fleet kept changing; try again".into()))
}

/// Keeps a finished run beside the fleet, for `GET /_miroir/rebalance/status`.
pub async fn archive_run(state: &AppState, run: &Run) -> HttpResult<()> {
    let doc = serde_json::to_value(run).map_err(|e| HttpError::Internal(e.to_string()))?;
    match state.store().save_rebalance(&run_record(run.id), 0, &doc, None).await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Finished runs, oldest first.
pub async fn archived_runs(state: &AppState) -> HttpResult<Vec<Run>> {
    let mut runs = Vec::new();
    for id in state.store().list_rebalance_runs().await? {
        if !id.starts_with("run-") {
            continue;
        }
        if let Some(stored) = state.store().get_rebalance(&id).await? {
            if let Ok(run) = serde_json::from_value::<Run>(stored.doc) {
                runs.push(run);
            }
        }
    }
    Ok(runs)
}

async fn load(state: &AppState) -> HttpResult<Option<Fleet>> {
    let Some(stored) = state.store().get_rebalance(FLEET_RECORD).await? else {
        return Ok(None);
    };
    let mut fleet: Fleet = serde_json::from_value(stored.doc)
        .map_err(|e| HttpError::Internal(format!("the stored fleet is unreadable: {e}")))?;
    fleet.version = stored.version;
    Ok(Some(fleet))
}

fn install(state: &AppState, fleet: Fleet) -> HttpResult<bool> {
    state.install_fleet(fleet).map_err(|e| HttpError::Internal(format!("invalid fleet: {e}")))
}

/// Installs a fleet just saved, even when the store's versions started over (a lost store).
fn install_restored(state: &AppState, fleet: Fleet) -> HttpResult<bool> {
    state
        .install_fleet_version(fleet)
        .map_err(|e| HttpError::Internal(format!("invalid fleet: {e}")))
}

/// Keeps a copy of the fleet in the catalog of its members (best effort), for a Miroir that
/// loses its task store (see [`kept_on_nodes`]).
async fn publish(state: &AppState, fleet: &Fleet) {
    let Ok(doc) = to_doc(fleet) else { return };
    let Ok(doc) = crate::node_catalog::fleet_document(&doc) else { return };
    let clients =
        state.fleet().clients_for(fleet.members().map(|n| (n.id.clone(), n.address.clone())));
    if let Err(error) = crate::node_catalog::write(clients.iter(), &[doc]).await {
        tracing::warn!(%error, "cannot keep a copy of the fleet on the nodes");
    }
}

/// The fleet kept in the nodes' catalog, if any node of the configured seed has one.
async fn kept_on_nodes(state: &AppState) -> Option<serde_json::Value> {
    let clients = state.clients();
    match crate::node_catalog::read(clients.iter()).await {
        Ok(catalog) => catalog.fleet.map(|(_, fleet)| fleet),
        Err(_) => None,
    }
}

fn to_doc(fleet: &Fleet) -> HttpResult<serde_json::Value> {
    serde_json::to_value(fleet).map_err(|e| HttpError::Internal(e.to_string()))
}

/// A refused fleet change, as the API answers it.
pub fn fleet_error(error: FleetError) -> HttpError {
    let code = match &error {
        FleetError::UnknownNode(_) => ErrorCode::MiroirNodeNotFound,
        FleetError::Topology(_) => ErrorCode::MiroirInvalidNode,
        _ => ErrorCode::MiroirFleetConflict,
    };
    HttpError::from(ApiError::new(code, error.to_string()))
}
