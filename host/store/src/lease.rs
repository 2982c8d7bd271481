//! Named leases with fencing tokens: the primitive under leader election.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreResult;

/// A lease as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease name, e.g. `"leader"`.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// The fencing token of this acquisition.
    pub token: u64,
    /// How long until it expires unless renewed (as seen when the store answered).
    pub remaining: Duration,
}

/// The answer to [`LeaseStore::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease (newly, or it already did and it was renewed).
    Acquired(Lease),
    /// Someone else holds a live lease.
    HeldByOther(Lease),
}

/// Proof that a write comes from the holder of the latest acquisition of a lease.
///
/// A store refuses (`Conflict`) a fenced write whose token is not the latest token issued for
/// `lease`, so a deposed leader that wakes up late cannot overwrite its successor's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease name.
    pub lease: String,
    /// The token of the acquisition the writer holds.
    pub token: u64,
}

/// Leases with fencing tokens.
///
/// Every new acquisition gets a token strictly larger than every token issued before for the
/// same name, also across restarts of the store and after release or expiry.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes lease `name` for `holder` for `ttl` if it is free or expired. If `holder` already
    /// holds it, renews it and keeps the token.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<LeaseOutcome>;

    /// Extends the lease to `ttl` from now if `holder` still holds it with `token`; `None` if
    /// the lease was lost (expired, released or taken by someone else).
    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        token: u64,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>>;

    /// Frees the lease if `holder` holds it with `token`; returns whether it did.
    async fn release_lease(&self, name: &str, holder: &str, token: u64) -> StoreResult<bool>;

    /// The live lease `name`, if any.
    async fn current_lease(&self, name: &str) -> StoreResult<Option<Lease>>;

    /// `Ok` if `fence.token` is the latest token issued for `fence.lease`, else `Conflict`.
    /// Fenced writes check this atomically with the write; this is for callers that only need
    /// the check.
    async fn check_fence(&self, fence: &Fence) -> StoreResult<()>;
}
