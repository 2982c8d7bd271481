//! CDC cursors: one hash field per index. Cursors are compared as decimal strings (length, then
//! digits) so values above 2^53 compare exactly, which Lua numbers would not.

use std::sync::LazyLock;

use async_trait::async_trait;
use miroir_store::{CdcCursors, StoreError, StoreResult};
use redis::{AsyncCommands, Script};

use crate::error::{parse_u64, redis_err};
use crate::RedisStore;

/// KEYS: cdc hash. ARGV: index uid, new cursor. Returns {1, cursor} or {0, current}.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local cur = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
         local to = ARGV[2]
         if #to < #cur or (#to == #cur and to < cur) then return {0, cur} end
         redis.call('HSET', KEYS[1], ARGV[1], to)
         return {1, to}",
    )
});

#[async_trait]
impl CdcCursors for RedisStore {
    async fn cdc_cursor(&self, index_uid: &str) -> StoreResult<u64> {
        self.run("cdc_cursor", async {
            let v: Option<String> =
                self.conn().hget(self.keys.cdc(), index_uid).await.map_err(redis_err)?;
            v.map_or(Ok(0), |v| parse_u64("CDC cursor", &v))
        })
        .await
    }

    async fn advance_cdc_cursor(&self, index_uid: &str, to: u64) -> StoreResult<u64> {
        self.run("advance_cdc_cursor", async {
            let (moved, cursor): (i64, String) = ADVANCE
                .key(self.keys.cdc())
                .arg(index_uid)
                .arg(to.to_string())
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            let cursor = parse_u64("CDC cursor", &cursor)?;
            if moved == 1 {
                Ok(cursor)
            } else {
                Err(StoreError::Conflict(format!(
                    "CDC cursor of `{index_uid}` is at {cursor}; it cannot move back to {to}"
                )))
            }
        })
        .await
    }
}
