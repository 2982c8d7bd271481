//! Leases: `lease:{name}` holds `{token}:{holder}` with a native TTL; `lease-token:{name}` is
//! the fencing counter and never expires, so tokens keep growing after expiry and release.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::ttl_ms;
use miroir_store::{Fence, Lease, LeaseOutcome, LeaseStore, StoreError, StoreResult};
use redis::{AsyncCommands, Script};

use crate::error::redis_err;
use crate::RedisStore;

/// KEYS: lease key, token key. ARGV: holder, ttl ms.
/// Returns {acquired (1/0), token, holder, remaining ms}.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local cur = redis.call('GET', KEYS[1])
         if cur then
           local sep = string.find(cur, ':', 1, true)
           local token = tonumber(string.sub(cur, 1, sep - 1))
           local holder = string.sub(cur, sep + 1)
           if holder == ARGV[1] then
             redis.call('PEXPIRE', KEYS[1], ARGV[2])
             return {1, token, holder, tonumber(ARGV[2])}
           end
           return {0, token, holder, redis.call('PTTL', KEYS[1])}
         end
         if redis.call('EXISTS', KEYS[2]) == 0 then
           -- A counter seen for the first time (a new namespace, or one emptied by a loss)
           -- starts from the server clock in ms, above any token issued before the loss.
           local t = redis.call('TIME')
           local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
           redis.call('SET', KEYS[2], string.format('%d', ms))
         end
         local token = redis.call('INCR', KEYS[2])
         redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
         return {1, token, ARGV[1], tonumber(ARGV[2])}",
    )
});

/// KEYS: lease key. ARGV: expected value, ttl ms. Returns 1 if renewed.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
         redis.call('PEXPIRE', KEYS[1], ARGV[2])
         return 1",
    )
});

/// KEYS: lease key. ARGV: expected value. Returns 1 if released.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
         return redis.call('DEL', KEYS[1])",
    )
});

/// The `Conflict` a fenced write with a stale token gets.
pub(crate) fn stale_fence(fence: Option<&Fence>) -> StoreError {
    match fence {
        Some(f) => StoreError::Conflict(format!(
            "fencing token {} of lease `{}` is no longer the latest",
            f.token, f.lease
        )),
        None => StoreError::Conflict("stale fencing token".into()),
    }
}

fn value(holder: &str, token: u64) -> String {
    format!("{token}:{holder}")
}

fn remaining(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

#[async_trait]
impl LeaseStore for RedisStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<LeaseOutcome> {
        self.run("acquire_lease", async {
            let (acquired, token, current, left): (i64, u64, String, i64) = ACQUIRE
                .key(self.keys.lease(name))
                .key(self.keys.lease_token(name))
                .arg(holder)
                .arg(ttl_ms(ttl))
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            let lease =
                Lease { name: name.to_owned(), holder: current, token, remaining: remaining(left) };
            Ok(if acquired == 1 {
                LeaseOutcome::Acquired(lease)
            } else {
                LeaseOutcome::HeldByOther(lease)
            })
        })
        .await
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        token: u64,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>> {
        self.run("renew_lease", async {
            let renewed: i64 = RENEW
                .key(self.keys.lease(name))
                .arg(value(holder, token))
                .arg(ttl_ms(ttl))
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok((renewed == 1).then(|| Lease {
                name: name.to_owned(),
                holder: holder.to_owned(),
                token,
                remaining: ttl,
            }))
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str, token: u64) -> StoreResult<bool> {
        self.run("release_lease", async {
            let released: i64 = RELEASE
                .key(self.keys.lease(name))
                .arg(value(holder, token))
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(released == 1)
        })
        .await
    }

    async fn current_lease(&self, name: &str) -> StoreResult<Option<Lease>> {
        self.run("current_lease", async {
            let (current, left): (Option<String>, i64) = redis::pipe()
                .get(self.keys.lease(name))
                .pttl(self.keys.lease(name))
                .query_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            let Some(current) = current else { return Ok(None) };
            let (token, holder) = current
                .split_once(':')
                .ok_or_else(|| StoreError::Corrupt(format!("lease `{name}` value `{current}`")))?;
            let token = crate::error::parse_u64("lease token", token)?;
            Ok(Some(Lease {
                name: name.to_owned(),
                holder: holder.to_owned(),
                token,
                remaining: remaining(left),
            }))
        })
        .await
    }

    async fn check_fence(&self, fence: &Fence) -> StoreResult<()> {
        self.run("check_fence", async {
            let latest: Option<u64> =
                self.conn().get(self.keys.lease_token(&fence.lease)).await.map_err(redis_err)?;
            if latest == Some(fence.token) {
                Ok(())
            } else {
                Err(stale_fence(Some(fence)))
            }
        })
        .await
    }
}
