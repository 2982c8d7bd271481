//! The `local` rate-limit backend: token buckets in this instance's memory (GCRA, `governor`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter as Gcra};
use miroir_types::RateLimiter;

type Buckets = Gcra<
    u64,
    governor::state::keyed::HashMapStateStore<u64>,
    DefaultClock,
    governor::middleware::NoOpMiddleware,
>;

/// Above this many clients, buckets that are full again are forgotten.
const FORGET_ABOVE: usize = 100_000;

/// A token bucket per client in memory: the cluster-wide rate is the per-client rate times the
/// number of instances.
pub struct LocalBuckets {
    buckets: Buckets,
    clock: DefaultClock,
}

impl LocalBuckets {
    /// Buckets of `burst` requests refilled at `per_second`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let period = Duration::from_secs_f64(1.0 / per_second.max(1e-6));
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota =
            Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN));
        LocalBuckets {
            buckets: Gcra::hashmap(quota.allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }
}

#[async_trait]
impl RateLimiter for LocalBuckets {
    async fn acquire(&self, client: &str) -> Result<(), Duration> {
        let mut hasher = DefaultHasher::new();
        client.hash(&mut hasher);
        let key = hasher.finish();
        if self.buckets.len() > FORGET_ABOVE {
            self.buckets.retain_recent();
        }
        self.buckets.check_key(&key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_gets_its_burst_then_waits_and_others_are_not_affected() {
        let buckets = LocalBuckets::new(2.0, 3);
        for _ in 0..3 {
            assert_eq!(buckets.acquire("192.0.2.1").await, Ok(()));
        }
        let wait = buckets.acquire("192.0.2.1").await.expect_err("over the burst");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(buckets.acquire("192.0.2.2").await, Ok(()));
    }
}
