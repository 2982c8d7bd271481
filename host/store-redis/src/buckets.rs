//! The `redis` backend of the search page's rate limit: one token bucket per client shared by
//! every Miroir instance, so the cluster-wide rate is the per-client rate.
//!
//! Each bucket is one key holding its theoretical arrival time (GCRA, the algorithm of the
//! `local` backend): a request is let through when that time is at most `burst - 1` emission
//! intervals ahead of now, and pushes it one interval further. The script reads the Redis
//! server's clock, so instances with skewed clocks share one bucket correctly; keys expire once
//! their bucket is full again.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use miroir_store::{StoreError, StoreResult};
use miroir_types::RateLimiter;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use crate::error::redis_err;
use crate::lua::NOW;

/// KEYS: the bucket. ARGV: emission interval (ms, may be fractional), burst. Returns `0` when
/// the request may go, otherwise the milliseconds until it may.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
        local interval = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local tat = tonumber(redis.call('GET', KEYS[1]) or now)
        if tat < now then tat = now end
        local ahead = tat - now
        local allowance = interval * (burst - 1)
        if ahead > allowance then return math.ceil(ahead - allowance) end
        tat = tat + interval
        redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
        return 0"
    ))
});

/// Token buckets in Redis, one per client.
pub struct RedisBuckets {
    conn: ConnectionManager,
    prefix: String,
    interval_ms: f64,
    burst: u32,
    op_timeout: Duration,
}

impl RedisBuckets {
    /// Connects to `url`; buckets hold `burst` requests refilled at `per_second`, under keys
    /// starting with `prefix` (e.g. `miroir:ratelimit:`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        per_second: f64,
        burst: u32,
    ) -> StoreResult<Self> {
        let op_timeout = Duration::from_secs(1);
        let client =
            redis::Client::open(url).map_err(|e| StoreError::Invalid(format!("redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(op_timeout))
            .set_response_timeout(Some(op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            op_timeout * 2,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| StoreError::Unavailable("redis connect timed out".into()))?
        .map_err(redis_err)?;
        Ok(RedisBuckets {
            conn,
            prefix: prefix.to_owned(),
            interval_ms: 1000.0 / per_second.max(1e-6),
            burst: burst.max(1),
            op_timeout,
        })
    }

    async fn take(&self, client: &str) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        let mut call = TAKE.key(format!("{}{client}", self.prefix));
        call.arg(self.interval_ms).arg(self.burst);
        tokio::time::timeout(self.op_timeout, call.invoke_async::<u64>(&mut conn))
            .await
            .map_err(|_| StoreError::Unavailable("redis did not answer in time".into()))?
            .map_err(redis_err)
    }
}

#[async_trait]
impl RateLimiter for RedisBuckets {
    /// A Redis that cannot be reached lets the request through (the page stays up; the
    /// failure is logged): the limit protects the cluster, it must not take the page down.
    async fn acquire(&self, client: &str) -> Result<(), Duration> {
        match self.take(client).await {
            Ok(0) => Ok(()),
            Ok(wait_ms) => Err(Duration::from_millis(wait_ms)),
            Err(error) => {
                tracing::warn!(%error, "rate limit not applied: redis unavailable");
                Ok(())
            }
        }
    }
}
