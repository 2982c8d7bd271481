//! The settings drift check, leader-only: every `rebalancer.drift_check_interval` the leader
//! compares every node's settings of every index and repairs the nodes that differ from the
//! majority (`miroir_http::settings::drift`). A check in progress is dropped the moment the
//! lease is lost.

use std::time::Duration;

use miroir_http::settings::drift::check_and_repair;
use miroir_http::AppState;
use miroir_store::LeaderState;
use prometheus::IntCounter;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts the loop; it ends when the leader election stops.
pub fn spawn(
    state: AppState,
    mut leader: watch::Receiver<LeaderState>,
    interval: Duration,
    repairs: IntCounter,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if leader.wait_for(|s| s.is_leader).await.is_err() {
                return;
            }
            tokio::time::sleep(interval).await;
            if !leader.borrow().is_leader {
                continue;
            }
            let mut lost = leader.clone();
            tokio::select! {
                report = check_and_repair(&state) => {
                    let repaired: usize = report.iter().map(|d| d.repaired.len()).sum();
                    repairs.inc_by(repaired as u64);
                    for drift in report.iter().filter(|d| d.unresolved.is_some()) {
                        tracing::warn!(index = %drift.index, reason = ?drift.unresolved,
                            "settings drift left unrepaired");
                    }
                }
                _ = lost.wait_for(|s| !s.is_leader) => {
                    tracing::info!("lease lost: drift check stopped");
                }
            }
        }
    })
}
