//! Sessions: one string per session with a native TTL, plus a sorted set of ids by expiry that
//! enforces the bound (see [`miroir_store::SessionLimits`]).

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::ttl_ms;
use miroir_store::{SessionRecord, SessionStore, StoreResult};
use redis::{AsyncCommands, Script};

use crate::error::{from_json, redis_err, to_json};
use crate::lua::NOW;
use crate::RedisStore;

/// KEYS: session key, sessions index. ARGV: record JSON, ttl ms, id, max, session key prefix.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
        local ttl = tonumber(ARGV[2])
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
        redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
        if excess > 0 then
          local victims = redis.call('ZRANGE', KEYS[2], 0, excess)
          for _, id in ipairs(victims) do
            if excess <= 0 then break end
            if id ~= ARGV[3] then
              redis.call('ZREM', KEYS[2], id)
              redis.call('DEL', ARGV[5] .. id)
              excess = excess - 1
            end
          end
        end
        return 1"
    ))
});

/// KEYS: session key, sessions index. ARGV: id. Returns whether the session was live.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('ZREM', KEYS[2], ARGV[1])
         return redis.call('DEL', KEYS[1])",
    )
});

/// KEYS: sessions index. Returns the number of live sessions.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!("{NOW} return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"))
});

#[async_trait]
impl SessionStore for RedisStore {
    async fn put_session(
        &self,
        id: &str,
        record: &SessionRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let json = to_json("session", record)?;
        self.run("put_session", async {
            let _: i64 = PUT
                .key(self.keys.session(id))
                .key(self.keys.sessions())
                .arg(json)
                .arg(ttl_ms(ttl))
                .arg(id)
                .arg(self.sessions.max_sessions)
                .arg(self.keys.session_prefix())
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.run("get_session", async {
            let v: Option<String> =
                self.conn().get(self.keys.session(id)).await.map_err(redis_err)?;
            v.map(|v| from_json("session", &v)).transpose()
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        self.run("delete_session", async {
            let n: i64 = DELETE
                .key(self.keys.session(id))
                .key(self.keys.sessions())
                .arg(id)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn session_count(&self) -> StoreResult<u64> {
        self.run("session_count", async {
            COUNT.key(self.keys.sessions()).invoke_async(&mut self.conn()).await.map_err(redis_err)
        })
        .await
    }
}
