//! Leader election over a [`LeaseStore`]: one instance at a time runs singleton work.
//!
//! [`LeaderElector::spawn`] starts a task that tries to take the lease, renews it while it holds
//! it, and publishes [`LeaderState`] on a `tokio::sync::watch` channel. A failed or lost renewal
//! flips the state to follower at once, so singleton work (settings broadcast, rebalance, drift
//! check, pruning) can stop before another instance takes over. A follower retries at the
//! renewal interval, or right when the current lease is due to expire if that is sooner, so it
//! takes over within the TTL of the last renewal. Singleton writes carry the [`Fence`] from
//! [`LeaderHandle::fence`] and the store refuses them once a newer leader exists.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::holder::{holder_instance, LeaseHolder};
use crate::{Fence, LeaseOutcome, LeaseStore, StoreError, StoreResult};

/// The lease name leader election uses by default.
pub const LEADER_LEASE: &str = "leader";

/// How an elector behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The lease to compete for.
    pub lease_name: String,
    /// This instance's id, unique among instances. When it is a [`LeaseHolder`] encoding, a
    /// lease left by a dead earlier process of this machine is released at once, and
    /// [`LeaderState::leader_id`] shows only the instance part.
    pub holder_id: String,
    /// How long a lease lasts without renewal. Default 30 s.
    pub ttl: Duration,
    /// How often the leader renews and a follower retries. Default 10 s; keep it at most a
    /// third of `ttl` so a leader notices a failed renewal before its lease can expire.
    pub renew_every: Duration,
}

impl LeaderConfig {
    /// The defaults from the specification (`leader`, TTL 30 s, renewal every 10 s).
    pub fn new(holder_id: impl Into<String>) -> Self {
        LeaderConfig {
            lease_name: LEADER_LEASE.to_owned(),
            holder_id: holder_id.into(),
            ttl: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
        }
    }

    /// The same with another TTL and renewal interval.
    pub fn with_timing(mut self, ttl: Duration, renew_every: Duration) -> Self {
        self.ttl = ttl;
        self.renew_every = renew_every;
        self
    }

    /// How long one store call may take before the elector gives up on it.
    fn call_timeout(&self) -> Duration {
        self.renew_every
            .min(self.ttl.saturating_sub(self.renew_every))
            .max(Duration::from_millis(1))
    }
}

/// What an instance knows about leadership.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderState {
    /// Whether this instance holds the lease now.
    pub is_leader: bool,
    /// The holder of the lease, if known (this instance's id when it leads).
    pub leader_id: Option<String>,
    /// The fencing token of this instance's acquisition, while it leads.
    pub fencing_token: Option<u64>,
}

/// Starts leader election tasks.
pub struct LeaderElector;

impl LeaderElector {
    /// Spawns the election loop for `config` on `store` (on the current tokio runtime).
    pub fn spawn<S>(store: Arc<S>, config: LeaderConfig) -> LeaderHandle
    where
        S: LeaseStore + ?Sized + 'static,
    {
        let (state_tx, state_rx) = watch::channel(LeaderState::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let lease_name = config.lease_name.clone();
        let task = tokio::spawn(run(store, config, state_tx, stop_rx));
        LeaderHandle { lease_name, state: state_rx, stop: Some(stop_tx), task: Some(task) }
    }
}

/// A running elector. Dropping it aborts the loop without releasing the lease (as a crash
/// would); call [`release`](LeaderHandle::release) on graceful shutdown.
pub struct LeaderHandle {
    lease_name: String,
    state: watch::Receiver<LeaderState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<StoreResult<()>>>,
}

impl LeaderHandle {
    /// A receiver of every state change.
    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.state.clone()
    }

    /// The current state.
    pub fn state(&self) -> LeaderState {
        self.state.borrow().clone()
    }

    /// The fence singleton writes must carry, while this instance leads.
    pub fn fence(&self) -> Option<Fence> {
        let state = self.state.borrow();
        match (state.is_leader, state.fencing_token) {
            (true, Some(token)) => Some(Fence { lease: self.lease_name.clone(), token }),
            _ => None,
        }
    }

    /// Stops the loop, flips to follower and releases the lease if held, so another instance
    /// takes over without waiting for the TTL.
    pub async fn release(mut self) -> StoreResult<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| StoreError::Unavailable(format!("leader election task: {e}")))?,
            None => Ok(()),
        }
    }

    /// Stops the loop at once without releasing the lease (what a crash looks like to others).
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for LeaderHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn publish(tx: &watch::Sender<LeaderState>, new: LeaderState) {
    tx.send_if_modified(|state| {
        if *state == new {
            false
        } else {
            if state.is_leader != new.is_leader {
                // A span of its own, so a trace backend shows each change of leadership.
                let _span = tracing::info_span!("leader_change", is_leader = new.is_leader,
                    leader = ?new.leader_id, token = ?new.fencing_token)
                .entered();
                if new.is_leader {
                    tracing::info!(token = ?new.fencing_token, "became leader");
                } else {
                    tracing::warn!(leader = ?new.leader_id, "lost leadership");
                }
            }
            *state = new;
            true
        }
    });
}

async fn run<S>(
    store: Arc<S>,
    config: LeaderConfig,
    tx: watch::Sender<LeaderState>,
    mut stop: oneshot::Receiver<()>,
) -> StoreResult<()>
where
    S: LeaseStore + ?Sized,
{
    let name = config.lease_name.as_str();
    let me = config.holder_id.as_str();
    let call_timeout = config.call_timeout();
    let follower = |leader_id: Option<String>| LeaderState {
        is_leader: false,
        leader_id,
        fencing_token: None,
    };
    let me_holder = LeaseHolder::parse(me);
    let me_shown = holder_instance(me).to_owned();
    let mut token: Option<u64> = None;
    loop {
        let wait = match token {
            Some(held) => {
                let renewed = tokio::time::timeout(
                    call_timeout,
                    store.renew_lease(name, me, held, config.ttl),
                )
                .await;
                match renewed {
                    Ok(Ok(Some(_))) => config.renew_every,
                    Ok(Ok(None)) => {
                        token = None;
                        publish(&tx, follower(None));
                        Duration::ZERO
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "leader lease renewal failed");
                        token = None;
                        publish(&tx, follower(None));
                        config.renew_every
                    }
                    Err(_) => {
                        tracing::warn!("leader lease renewal timed out");
                        token = None;
                        publish(&tx, follower(None));
                        config.renew_every
                    }
                }
            }
            None => {
                let acquired =
                    tokio::time::timeout(call_timeout, store.acquire_lease(name, me, config.ttl))
                        .await;
                match acquired {
                    Ok(Ok(LeaseOutcome::Acquired(lease))) => {
                        token = Some(lease.token);
                        publish(
                            &tx,
                            LeaderState {
                                is_leader: true,
                                leader_id: Some(me_shown.clone()),
                                fencing_token: Some(lease.token),
                            },
                        );
                        config.renew_every
                    }
                    Ok(Ok(LeaseOutcome::HeldByOther(lease)))
                        if me_holder
                            .as_ref()
                            .is_some_and(|h| h.is_dead_predecessor(&lease.holder)) =>
                    {
                        // Left by a process of this machine that is gone (this instance before
                        // a crash): free it now rather than after its TTL.
                        tracing::info!(holder = %lease.holder, "releasing the leader lease of a dead process");
                        match store.release_lease(name, &lease.holder, lease.token).await {
                            Ok(true) => Duration::ZERO,
                            Ok(false) => {
                                config.renew_every.min(lease.remaining + Duration::from_millis(5))
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "cannot release a dead process's lease");
                                config.renew_every.min(lease.remaining + Duration::from_millis(5))
                            }
                        }
                    }
                    Ok(Ok(LeaseOutcome::HeldByOther(lease))) => {
                        publish(&tx, follower(Some(holder_instance(&lease.holder).to_owned())));
                        config.renew_every.min(lease.remaining + Duration::from_millis(5))
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "leader lease acquisition failed");
                        publish(&tx, follower(None));
                        config.renew_every
                    }
                    Err(_) => {
                        publish(&tx, follower(None));
                        config.renew_every
                    }
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => break,
        }
    }
    publish(&tx, follower(None));
    match token {
        Some(held) => store.release_lease(name, me, held).await.map(|_| ()),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
