//! Miroir's shared task store on Redis, required when two or more Miroir instances run.
//!
//! This crate owns the Redis backend of [`miroir_store::TaskStore`]: the connection (a
//! `redis::aio::ConnectionManager`, which reconnects by itself after Redis restarts), the key
//! layout ([`keys`]), and one module per table. Multi-step operations are Lua scripts, so each
//! is atomic on the server. TTLs are native (`PX`/`PEXPIRE`); lease, claim and session deadlines
//! use the Redis server's clock (`TIME`), so instances with skewed clocks still agree. It does
//! not own the trait, the records or the conformance suite (`miroir-store`).
//!
//! Every call is bounded by [`RedisConfig::op_timeout`]; an unreachable server gives
//! [`StoreError::Unavailable`], never a hang or a panic.

mod buckets;
mod cdc;
mod error;
mod idempotency;
mod indexes;
mod jobs;
pub mod keys;
mod leases;
mod lua;
mod plugin_kv;
mod rebalance;
mod sessions;
mod tasks;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use miroir_store::{NoMetrics, SessionLimits, SharedMetrics, StoreError, StoreResult, TaskStore};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::redis_err;
use crate::keys::Keys;

pub use buckets::RedisBuckets;

/// The backend name used in metrics labels.
pub const BACKEND: &str = "redis";

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// The server URL, e.g. `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// Put before every key; `miroir:` by default. Tests use a unique prefix each. With Redis
    /// Cluster use a hash tag such as `{miroir}:` so every key lands in one slot (the scripts
    /// touch several keys).
    pub prefix: String,
    /// The session bound and eviction rule.
    pub sessions: SessionLimits,
    /// The longest one store call may take, reconnection included.
    pub op_timeout: Duration,
    /// The longest one connection attempt may take.
    pub connect_timeout: Duration,
}

impl RedisConfig {
    /// `url` with prefix `miroir:`, a 2 s operation timeout and a 1 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: keys::DEFAULT_PREFIX.to_owned(),
            sessions: SessionLimits::default(),
            op_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// The same with another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// A handle on a Redis task store. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Arc<Keys>,
    sessions: SessionLimits,
    op_timeout: Duration,
    metrics: SharedMetrics,
}

impl RedisStore {
    /// Connects to `config.url`. `Unavailable` if the server cannot be reached now.
    pub async fn connect(config: RedisConfig) -> StoreResult<Self> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::Invalid(format!("redis url: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.op_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            config.op_timeout + config.connect_timeout,
            ConnectionManager::new_with_config(client, manager_config),
        )
        .await
        .map_err(|_| StoreError::Unavailable("redis connect timed out".into()))?
        .map_err(redis_err)?;
        let mut init = conn.clone();
        // A new namespace starts its task sequence at 0; one that exists keeps it. From here
        // on a missing sequence means the data was lost, and `create_task` says so.
        let _: () = tokio::time::timeout(
            config.op_timeout,
            redis::cmd("SET")
                .arg(keys::Keys::new(config.prefix.clone()).task_seq())
                .arg(0)
                .arg("NX")
                .query_async::<Option<String>>(&mut init),
        )
        .await
        .map_err(|_| StoreError::Unavailable("redis did not answer in time".into()))?
        .map(|_| ())
        .map_err(redis_err)?;
        Ok(RedisStore {
            conn,
            keys: Arc::new(Keys::new(config.prefix)),
            sessions: config.sessions,
            op_timeout: config.op_timeout,
            metrics: Arc::new(NoMetrics),
        })
    }

    /// The same store reporting its operations to `metrics`.
    pub fn with_metrics(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// A clone of the connection for one call.
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs `fut` within the operation timeout and reports it as `op`.
    async fn run<T, Fut>(&self, op: &'static str, fut: Fut) -> StoreResult<T>
    where
        Fut: Future<Output = StoreResult<T>>,
    {
        let start = Instant::now();
        let result = match tokio::time::timeout(self.op_timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "redis {op} did not answer within {:?}",
                self.op_timeout
            ))),
        };
        self.metrics.observe(op, BACKEND, start.elapsed(), result.is_ok());
        result
    }
}

#[async_trait]
impl TaskStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn purge_expired(&self) -> StoreResult<u64> {
        // Keys expire by themselves; only the session index keeps expired members.
        self.run("purge_expired", async {
            let removed: u64 = lua::PURGE_SESSIONS
                .key(self.keys.sessions())
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(removed)
        })
        .await
    }
}
