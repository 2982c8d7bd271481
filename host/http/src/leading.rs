//! Work only the leader does, under its fencing token.

use std::future::Future;

use miroir_store::{Fence, LeaderState};
use tokio::sync::watch;

/// Runs `work` with this instance's fence whenever it leads, again each time `work` returns,
/// and cancels it the moment the lease is lost (`what` names the work in that log line).
/// Returns when the election stops.
pub async fn while_leading<F, Fut>(
    mut leader: watch::Receiver<LeaderState>,
    lease: &str,
    what: &str,
    mut work: F,
) where
    F: FnMut(Fence) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let token = match leader.wait_for(|s| s.is_leader && s.fencing_token.is_some()).await {
            Ok(s) => s.fencing_token,
            Err(_) => return,
        };
        let Some(token) = token else { continue };
        let fence = Fence { lease: lease.to_owned(), token };
        let mut lost = leader.clone();
        tokio::select! {
            () = work(fence) => {}
            _ = lost.wait_for(|s| !s.is_leader) => {
                tracing::info!("lease lost: {what} handed over to the next leader");
            }
        }
    }
}
