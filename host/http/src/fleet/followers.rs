//! Which fleet version each instance follows, so the rebalance waits for the instances rather
//! than for a fixed time.
//!
//! Every instance records, in the task store, the version it installed ([`record`], on each
//! read of the fleet and at least every second). After a phase change the leader waits until
//! every live instance (one that recorded within [`GONE_AFTER`]) follows the new version
//! ([`wait_for_all`]), at most [`WAIT_AT_MOST`]: an instance cut off from the store longer than
//! that is warned about and not waited for.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::AppState;

/// The key-value namespace of the records, one key per instance process.
const NAMESPACE: &str = "_miroir_fleet_followers";

/// An instance whose last record is older than this is gone (stopped or restarted).
pub const GONE_AFTER: Duration = Duration::from_secs(10);

/// The longest the leader waits for every instance to follow a change.
pub const WAIT_AT_MOST: Duration = Duration::from_secs(10);

/// Records older than this are deleted by the leader: their processes are long gone.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// What an instance records.
#[derive(Debug, Serialize, Deserialize)]
struct Following {
    /// The fleet version it installed.
    version: u64,
    /// When it recorded it, in milliseconds since the Unix epoch.
    at_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Records the fleet version this instance follows.
pub async fn record(state: &AppState) -> miroir_store::StoreResult<()> {
    let following = Following { version: state.fleet().fleet().version, at_ms: now_ms() };
    let bytes = serde_json::to_vec(&following).expect("a record serializes");
    state.store().plugin_put(NAMESPACE, state.instance_tag(), &bytes).await
}

/// The live instances that do not follow `version` yet.
async fn lagging(state: &AppState, version: u64) -> miroir_store::StoreResult<Vec<String>> {
    let store = state.store();
    let now = now_ms();
    let mut lagging = Vec::new();
    for key in store.plugin_list_keys(NAMESPACE, "").await? {
        let Some(bytes) = store.plugin_get(NAMESPACE, &key).await? else { continue };
        let Ok(following) = serde_json::from_slice::<Following>(&bytes) else { continue };
        let age = now.saturating_sub(following.at_ms);
        if age > FORGET_AFTER.as_millis() as u64 {
            store.plugin_delete(NAMESPACE, &key).await?;
        } else if age <= GONE_AFTER.as_millis() as u64 && following.version < version {
            lagging.push(key);
        }
    }
    Ok(lagging)
}

/// Waits until every live instance follows this instance's fleet version (or later), at most
/// [`WAIT_AT_MOST`].
pub async fn wait_for_all(state: &AppState) {
    let version = state.fleet().fleet().version;
    let deadline = tokio::time::Instant::now() + WAIT_AT_MOST;
    loop {
        let outcome = lagging(state, version).await;
        if matches!(&outcome, Ok(lagging) if lagging.is_empty()) {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            match outcome {
                Ok(lagging) => tracing::warn!(
                    version,
                    ?lagging,
                    "instances did not follow the fleet in time; going on without them"
                ),
                Err(error) => tracing::warn!(version, %error,
                    "cannot read which fleet version the instances follow; going on"),
            }
            return;
        }
        tokio::time::sleep(super::FOLLOW_EVERY / 2).await;
    }
}
