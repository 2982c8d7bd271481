//! The index catalog: one hash per index plus a set of uids.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use miroir_store::clock::{from_nanos, to_nanos};
use miroir_store::{Fence, IndexCatalog, IndexMeta, StoreError, StoreResult};
use redis::{AsyncCommands, Script};
use time::OffsetDateTime;

use crate::error::{parse_u64, redis_err};

use crate::lua::{DELETE_MEMBER, FENCE_OK};
use crate::RedisStore;

/// KEYS: index key, index set. ARGV: uid, create-only flag, then field/value pairs.
/// Returns 0 when create-only and the index exists.
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
         redis.call('DEL', KEYS[1])
         redis.call('HSET', KEYS[1], unpack(ARGV, 3))
         redis.call('SADD', KEYS[2], ARGV[1])
         return 1",
    )
});

/// KEYS: index key, fence token key. ARGV: updated_at, fence token or ''.
/// Returns {1, version}, {-1} for a stale fence, {-2} for a missing index.
static BUMP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE_OK}
        if not fence_ok(KEYS[2], ARGV[2]) then return {{-1}} end
        if redis.call('EXISTS', KEYS[1]) == 0 then return {{-2}} end
        local v = redis.call('HINCRBY', KEYS[1], 'settings_version', 1)
        redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
        return {{1, v}}"
    ))
});

fn fields(meta: &IndexMeta) -> StoreResult<Vec<(String, String)>> {
    let mut fields = vec![
        ("shard_count".to_owned(), meta.shard_count.to_string()),
        ("settings_version".to_owned(), meta.settings_version.to_string()),
        ("settings".to_owned(), meta.settings.to_string()),
        ("fields".to_owned(), serde_json::Value::from(meta.fields.clone()).to_string()),
        ("created_at".to_owned(), to_nanos(meta.created_at)?.to_string()),
        ("updated_at".to_owned(), to_nanos(meta.updated_at)?.to_string()),
    ];
    if let Some(pk) = &meta.primary_key {
        fields.push(("primary_key".to_owned(), pk.clone()));
    }
    Ok(fields)
}

fn decode(uid: &str, mut hash: HashMap<String, String>) -> StoreResult<Option<IndexMeta>> {
    if hash.is_empty() {
        return Ok(None);
    }
    let corrupt = |what: &str, e: serde_json::Error| {
        StoreError::Corrupt(format!("index `{uid}` {what}: {e}"))
    };
    let settings: serde_json::Value =
        serde_json::from_str(hash.remove("settings").as_deref().unwrap_or("{}"))
            .map_err(|e| corrupt("settings", e))?;
    let fields: Vec<String> =
        serde_json::from_str(hash.remove("fields").as_deref().unwrap_or("[]"))
            .map_err(|e| corrupt("fields", e))?;
    let mut field = |name: &str| {
        hash.remove(name)
            .ok_or_else(|| StoreError::Corrupt(format!("index `{uid}` has no `{name}`")))
    };
    let nanos = |text: String| {
        text.parse::<i64>()
            .map_err(|_| StoreError::Corrupt(format!("index `{uid}` date `{text}`")))
            .and_then(from_nanos)
    };
    let shard_count = parse_u64("shard count", &field("shard_count")?)?;
    Ok(Some(IndexMeta {
        uid: uid.to_owned(),
        shard_count: u32::try_from(shard_count)
            .map_err(|_| StoreError::Corrupt(format!("index `{uid}` shard count")))?,
        settings_version: parse_u64("settings version", &field("settings_version")?)?,
        created_at: nanos(field("created_at")?)?,
        updated_at: nanos(field("updated_at")?)?,
        primary_key: hash.remove("primary_key"),
        settings,
        fields,
    }))
}

impl RedisStore {
    async fn write_index(
        &self,
        op: &'static str,
        meta: &IndexMeta,
        create: bool,
    ) -> StoreResult<()> {
        let fields = fields(meta)?;
        self.run(op, async {
            let mut call = WRITE.key(self.keys.index(&meta.uid));
            call.key(self.keys.indexes()).arg(&meta.uid).arg(if create { "1" } else { "0" });
            for (name, value) in &fields {
                call.arg(name).arg(value);
            }
            let written: i64 = call.invoke_async(&mut self.conn()).await.map_err(redis_err)?;
            if written == 0 {
                return Err(StoreError::Conflict(format!("index `{}` already exists", meta.uid)));
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl IndexCatalog for RedisStore {
    async fn create_index(&self, meta: &IndexMeta) -> StoreResult<()> {
        self.write_index("create_index", meta, true).await
    }

    async fn put_index(&self, meta: &IndexMeta) -> StoreResult<()> {
        self.write_index("put_index", meta, false).await
    }

    async fn get_index(&self, uid: &str) -> StoreResult<Option<IndexMeta>> {
        self.run("get_index", async {
            let hash: HashMap<String, String> =
                self.conn().hgetall(self.keys.index(uid)).await.map_err(redis_err)?;
            decode(uid, hash)
        })
        .await
    }

    async fn list_indexes(&self) -> StoreResult<Vec<IndexMeta>> {
        self.run("list_indexes", async {
            let mut conn = self.conn();
            let mut uids: Vec<String> =
                conn.smembers(self.keys.indexes()).await.map_err(redis_err)?;
            uids.sort();
            if uids.is_empty() {
                // An empty pipeline is no command at all: answer without asking the server.
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for uid in &uids {
                pipe.hgetall(self.keys.index(uid));
            }
            let hashes: Vec<HashMap<String, String>> =
                pipe.query_async(&mut conn).await.map_err(redis_err)?;
            let mut out = Vec::new();
            for (uid, hash) in uids.iter().zip(hashes) {
                out.extend(decode(uid, hash)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_index(&self, uid: &str) -> StoreResult<bool> {
        self.run("delete_index", async {
            let n: i64 = DELETE_MEMBER
                .key(self.keys.index(uid))
                .key(self.keys.indexes())
                .arg(uid)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn bump_settings_version(
        &self,
        uid: &str,
        now: OffsetDateTime,
        fence: Option<&Fence>,
    ) -> StoreResult<u64> {
        let now = to_nanos(now)?;
        let (fence_key, token) = match fence {
            Some(f) => (self.keys.lease_token(&f.lease), f.token.to_string()),
            None => (self.keys.lease_token("-"), String::new()),
        };
        self.run("bump_settings_version", async {
            let reply: Vec<i64> = BUMP
                .key(self.keys.index(uid))
                .key(fence_key)
                .arg(now)
                .arg(token)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            match reply.as_slice() {
                [1, v] => Ok(*v as u64),
                [-1] => Err(crate::leases::stale_fence(fence)),
                _ => Err(StoreError::NotFound(format!("index `{uid}`"))),
            }
        })
        .await
    }
}
