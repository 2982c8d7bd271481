//! Idempotency keys: one string per key with a native TTL.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::ttl_ms;
use miroir_store::{IdempotencyRecord, IdempotencyStore, StoreResult};
use redis::{AsyncCommands, Script};

use crate::error::{from_json, redis_err, to_json};
use crate::RedisStore;

/// KEYS: idem key. ARGV: record JSON, ttl ms. Returns the live value, or nil after storing.
static PUT_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local v = redis.call('GET', KEYS[1])
         if v then return v end
         redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
         return false",
    )
});

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn put_idempotency_if_absent(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let json = to_json("idempotency record", record)?;
        self.run("put_idempotency_if_absent", async {
            let existing: Option<String> = PUT_IF_ABSENT
                .key(self.keys.idempotency(key))
                .arg(json)
                .arg(ttl_ms(ttl))
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            existing.map(|v| from_json("idempotency record", &v)).transpose()
        })
        .await
    }

    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        self.run("get_idempotency", async {
            let v: Option<String> =
                self.conn().get(self.keys.idempotency(key)).await.map_err(redis_err)?;
            v.map(|v| from_json("idempotency record", &v)).transpose()
        })
        .await
    }

    async fn idempotency_count(&self) -> StoreResult<u64> {
        // Keys expire natively, so counting the `idem:` keys counts the live ones. SCAN keeps
        // the server responsive; the gauge is refreshed in the background, not per request.
        self.run("idempotency_count", async {
            let pattern = self.keys.idempotency("*");
            let mut conn = self.conn();
            let mut keys: redis::AsyncIter<'_, String> =
                conn.scan_match(&pattern).await.map_err(redis_err)?;
            let mut count = 0u64;
            while let Some(item) = futures_util::StreamExt::next(&mut keys).await {
                item.map_err(redis_err)?;
                count += 1;
            }
            Ok(count)
        })
        .await
    }
}
