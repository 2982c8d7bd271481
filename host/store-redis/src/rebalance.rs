//! Rebalance state: one hash per run (`version`, `doc`) plus a set of run ids.

use std::sync::LazyLock;

use async_trait::async_trait;
use miroir_store::{Fence, RebalanceStore, StoreError, StoreResult, Versioned};
use redis::{AsyncCommands, Script};

use crate::error::{from_json, parse_u64, redis_err};

use crate::lua::{DELETE_MEMBER, FENCE_OK};
use crate::RedisStore;

/// KEYS: run key, run set, fence token key. ARGV: expected version, doc, run id, token or ''.
/// Returns {1, new version}, {-1} for a stale fence, {-2, current} for a version mismatch.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE_OK}
        if not fence_ok(KEYS[3], ARGV[4]) then return {{-1}} end
        local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
        if current ~= tonumber(ARGV[1]) then return {{-2, current}} end
        redis.call('HSET', KEYS[1], 'version', current + 1, 'doc', ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[3])
        return {{1, current + 1}}"
    ))
});

#[async_trait]
impl RebalanceStore for RedisStore {
    async fn get_rebalance(&self, run_id: &str) -> StoreResult<Option<Versioned>> {
        self.run("get_rebalance", async {
            let (version, doc): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(self.keys.rebalance(run_id))
                .arg("version")
                .arg("doc")
                .query_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            match (version, doc) {
                (Some(version), Some(doc)) => Ok(Some(Versioned {
                    version: parse_u64("rebalance version", &version)?,
                    doc: from_json("rebalance state", &doc)?,
                })),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn save_rebalance(
        &self,
        run_id: &str,
        expected_version: u64,
        doc: &serde_json::Value,
        fence: Option<&Fence>,
    ) -> StoreResult<u64> {
        let (fence_key, token) = match fence {
            Some(f) => (self.keys.lease_token(&f.lease), f.token.to_string()),
            None => (self.keys.lease_token("-"), String::new()),
        };
        self.run("save_rebalance", async {
            let reply: Vec<i64> = SAVE
                .key(self.keys.rebalance(run_id))
                .key(self.keys.rebalances())
                .key(fence_key)
                .arg(expected_version)
                .arg(doc.to_string())
                .arg(run_id)
                .arg(token)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            match reply.as_slice() {
                [1, v] => Ok(*v as u64),
                [-1] => Err(crate::leases::stale_fence(fence)),
                [-2, current] => Err(StoreError::Conflict(format!(
                    "rebalance run `{run_id}` is at version {current}, not {expected_version}"
                ))),
                other => Err(StoreError::Corrupt(format!("save_rebalance reply {other:?}"))),
            }
        })
        .await
    }

    async fn list_rebalance_runs(&self) -> StoreResult<Vec<String>> {
        self.run("list_rebalance_runs", async {
            let mut runs: Vec<String> =
                self.conn().smembers(self.keys.rebalances()).await.map_err(redis_err)?;
            runs.sort();
            Ok(runs)
        })
        .await
    }

    async fn delete_rebalance(&self, run_id: &str) -> StoreResult<bool> {
        self.run("delete_rebalance", async {
            let n: i64 = DELETE_MEMBER
                .key(self.keys.rebalance(run_id))
                .key(self.keys.rebalances())
                .arg(run_id)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(n == 1)
        })
        .await
    }
}
