//! The rate-limit port: a request budget per client, kept in this process or shared by every
//! instance.

use std::time::Duration;

use async_trait::async_trait;

/// A token bucket per client: `burst` requests at once, refilled at a steady rate.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one request from `client`'s bucket: `Ok(())` when it had one, otherwise how long
    /// until it has one again (the client's `Retry-After`).
    async fn acquire(&self, client: &str) -> Result<(), Duration>;
}
