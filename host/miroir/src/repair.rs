//! Repairs of replicas that missed writes, leader-only: about every second the leader repairs
//! the nodes with a repair record or a held-stale index ([`miroir_http::repair::repair_round`]),
//! and every `rebalancer.drift_check_interval` it compares document counts per shard across
//! owners ([`miroir_http::repair::anti_entropy`]). Every instance refreshes the repair metrics
//! (`miroir_repair_pending`, `miroir_shard_coverage`) every second, on a loop of its own. A repair in progress is
//! dropped the moment the lease is lost; the records stay in the store for the next leader.

use std::time::Duration;

use miroir_http::repair::{anti_entropy, refresh_status, repair_round};
use miroir_http::AppState;
use miroir_store::LeaderState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Time between two repair rounds.
pub const REPAIR_EVERY: Duration = Duration::from_secs(1);

/// Starts the loop; it ends when the leader election stops.
pub fn spawn(
    state: AppState,
    leader: watch::Receiver<LeaderState>,
    anti_entropy_every: Duration,
) -> JoinHandle<()> {
    // The metrics are refreshed on their own: a long repair must not leave them stale.
    let status = {
        let (state, leader) = (state.clone(), leader.clone());
        tokio::spawn(async move {
            while leader.has_changed().is_ok() {
                tokio::time::sleep(REPAIR_EVERY).await;
                refresh_status(&state).await;
            }
        })
    };
    tokio::spawn(async move {
        let _status = AbortOnDrop(status);
        let mut last_check = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(REPAIR_EVERY).await;
            if leader.has_changed().is_err() {
                return;
            }
            if !leader.borrow().is_leader {
                last_check = tokio::time::Instant::now();
                continue;
            }
            let mut lost = leader.clone();
            let check = last_check.elapsed() >= anti_entropy_every;
            tokio::select! {
                () = async {
                    repair_round(&state).await;
                    if check {
                        let added = anti_entropy(&state).await;
                        if added > 0 {
                            tracing::warn!(added, "anti-entropy: replicas recorded for repair");
                        }
                    }
                } => {
                    if check {
                        last_check = tokio::time::Instant::now();
                    }
                }
                _ = lost.wait_for(|s| !s.is_leader) => {
                    tracing::info!("lease lost: repairs stopped");
                }
            }
        }
    })
}

/// Aborts the task when dropped (the status loop ends with the repair loop).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
