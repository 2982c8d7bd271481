//! CDC cursors (one hash field per key) and the change log (a sorted set per index). Cursors are compared as decimal strings (length, then
//! digits) so values above 2^53 compare exactly, which Lua numbers would not.

use std::sync::LazyLock;

use async_trait::async_trait;
use miroir_store::{CdcCursors, CdcEntry, CdcLog, StoreError, StoreResult};
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

/// Appends events. KEYS: none. ARGV: key prefix, then index uid and event in pairs. For each
/// event: the next position of its index (`cdc:seq:{index}`, never reset), the member in
/// `cdc:log:{index}`, the index in `cdc:logs`. Returns the positions, as strings.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local prefix = ARGV[1]
         local positions = {}
         for i = 2, #ARGV, 2 do
           local index = ARGV[i]
           local seq = redis.call('INCR', prefix .. 'cdc:seq:' .. index)
           redis.call('ZADD', prefix .. 'cdc:log:' .. index, seq, seq .. ':' .. ARGV[i + 1])
           redis.call('SADD', prefix .. 'cdc:logs', index)
           positions[#positions + 1] = tostring(seq)
         end
         return positions",
    )
});

/// A log member is the position, `:`, the event (so equal events at two positions stay two
/// members).
fn entry_of(index_uid: &str, member: &[u8]) -> StoreResult<CdcEntry> {
    let colon = member.iter().position(|b| *b == b':').ok_or_else(|| {
        StoreError::Corrupt(format!("CDC log member of `{index_uid}` has no position"))
    })?;
    let seq = parse_u64("CDC position", &String::from_utf8_lossy(&member[..colon]))?;
    Ok(CdcEntry { index_uid: index_uid.to_owned(), seq, payload: member[colon + 1..].to_vec() })
}

#[async_trait]
impl CdcLog for RedisStore {
    async fn append_cdc_entries(&self, events: &[(String, Vec<u8>)]) -> StoreResult<Vec<u64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.run("append_cdc_entries", async {
            let mut call = APPEND.prepare_invoke();
            call.arg(self.keys.prefix());
            for (index_uid, payload) in events {
                call.arg(index_uid).arg(payload.as_slice());
            }
            let positions: Vec<String> =
                call.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
            positions.iter().map(|p| parse_u64("CDC position", p)).collect()
        })
        .await
    }

    async fn cdc_entries(
        &self,
        index_uid: &str,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<CdcEntry>> {
        self.run("cdc_entries", async {
            let limit = isize::try_from(limit).unwrap_or(isize::MAX);
            let members: Vec<Vec<u8>> = self
                .conn()
                .zrangebyscore_limit(
                    self.keys.cdc_log(index_uid),
                    format!("({after}"),
                    "+inf",
                    0,
                    limit,
                )
                .await
                .map_err(redis_err)?;
            members.iter().map(|m| entry_of(index_uid, m)).collect()
        })
        .await
    }

    async fn cdc_span(&self, index_uid: &str) -> StoreResult<Option<(u64, u64)>> {
        self.run("cdc_span", async {
            let first: Vec<Vec<u8>> =
                self.conn().zrange(self.keys.cdc_log(index_uid), 0, 0).await.map_err(redis_err)?;
            let last: Option<String> =
                self.conn().get(self.keys.cdc_seq(index_uid)).await.map_err(redis_err)?;
            match (first.first(), last) {
                (Some(first), Some(last)) => {
                    Ok(Some((entry_of(index_uid, first)?.seq, parse_u64("CDC position", &last)?)))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn cdc_indexes(&self) -> StoreResult<Vec<String>> {
        self.run("cdc_indexes", async {
            let mut indexes: Vec<String> =
                self.conn().smembers(self.keys.cdc_logs()).await.map_err(redis_err)?;
            indexes.sort();
            Ok(indexes)
        })
        .await
    }

    async fn trim_cdc_entries(&self, index_uid: &str, below: u64) -> StoreResult<u64> {
        self.run("trim_cdc_entries", async {
            let removed: u64 = self
                .conn()
                .zrembyscore(self.keys.cdc_log(index_uid), "-inf", format!("({below}"))
                .await
                .map_err(redis_err)?;
            Ok(removed)
        })
        .await
    }
}
