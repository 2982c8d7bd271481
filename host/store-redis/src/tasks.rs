//! Task records as JSON strings, indexed by a sorted set of uids and a sorted set of finish
//! times for pruning.
//!
//! Listing filters in the gateway: it walks the uid index newest first in batches and decodes
//! each record. A filter on uids only reads those records; a listing without filters stops as
//! soon as the page is full (the total is the index's size). Other filters read every record to
//! count the total, which is fine for the retention-bounded task table (7 days by default).

use std::collections::HashSet;
use std::sync::LazyLock;

use async_trait::async_trait;
use miroir_store::clock::unix_ms;
use miroir_store::{
    Fence, NewTask, StoreError, StoreResult, TaskFilter, TaskLog, TaskPage, TaskRecord,
};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use time::OffsetDateTime;

use crate::error::{from_json, redis_err, to_json};
use crate::leases::stale_fence;
use crate::lua::FENCE_OK;
use crate::RedisStore;

/// How many records one listing round trip reads.
const BATCH: isize = 256;

/// KEYS: task key, finished index. ARGV: JSON, uid, finish score or ''. Returns 0 if missing.
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
         redis.call('SET', KEYS[1], ARGV[1])
         if ARGV[3] ~= '' then
           redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
         else
           redis.call('ZREM', KEYS[2], ARGV[2])
         end
         return 1",
    )
});

/// One fenced pruning batch. KEYS: fence token key, uid index, finished index, then one task
/// key per uid. ARGV: fence token, cutoff in ms, then the uids. Returns -1 for a stale fence
/// (nothing deleted), else how many records it deleted; a uid whose finish score moved past
/// the cutoff since it was read is kept.
static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{FENCE_OK}
        if not fence_ok(KEYS[1], ARGV[1]) then return -1 end
        local deleted = 0
        for i = 3, #ARGV do
          local score = redis.call('ZSCORE', KEYS[3], ARGV[i])
          if score and tonumber(score) <= tonumber(ARGV[2]) then
            deleted = deleted + redis.call('DEL', KEYS[i + 1])
            redis.call('ZREM', KEYS[2], ARGV[i])
            redis.call('ZREM', KEYS[3], ARGV[i])
          end
        end
        return deleted"
    ))
});

/// KEYS: sequence. Returns the next uid, or -1 when the sequence is gone (the store was flushed
/// or replaced since it was opened): counting again from 1 would reuse uids clients hold.
static NEXT_UID: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
         return redis.call('INCR', KEYS[1])",
    )
});

/// KEYS: sequence. ARGV: the floor. Sets the sequence to at least the floor (creating it) and
/// returns it.
static RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
         local floor = tonumber(ARGV[1])
         if floor > cur then
           redis.call('SET', KEYS[1], ARGV[1])
           return floor
         end
         return cur",
    )
});

/// What `create_task` answers on a store that lost its sequence.
fn sequence_lost() -> StoreError {
    StoreError::NotFound("task sequence (the store was emptied since it was opened)".into())
}

/// The finish-index score of `task`: its finish time if it is terminal.
fn finish_score(task: &TaskRecord) -> Option<i64> {
    task.finished_at.filter(|_| task.status.is_terminal()).map(unix_ms)
}

fn is_unfiltered(f: &TaskFilter) -> bool {
    let plain = TaskFilter { from: None, limit: 0, ..f.clone() };
    plain == TaskFilter::default()
}

impl RedisStore {
    async fn read_tasks(
        &self,
        conn: &mut ConnectionManager,
        uids: &[u64],
    ) -> StoreResult<Vec<TaskRecord>> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = uids.iter().map(|u| self.keys.task(*u)).collect();
        let values: Vec<Option<String>> =
            redis::cmd("MGET").arg(keys).query_async(conn).await.map_err(redis_err)?;
        values.into_iter().flatten().map(|v| from_json("task", &v)).collect()
    }
}

#[async_trait]
impl TaskLog for RedisStore {
    async fn create_task(&self, task: NewTask) -> StoreResult<TaskRecord> {
        self.run("create_task", async {
            let mut conn = self.conn();
            let uid: i64 = NEXT_UID
                .key(self.keys.task_seq())
                .invoke_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if uid < 0 {
                return Err(sequence_lost());
            }
            let uid = uid as u64;
            let record = TaskRecord::from_new(uid, task);
            let json = to_json("task", &record)?;
            let mut pipe = redis::pipe();
            pipe.atomic().set(self.keys.task(uid), json).ignore();
            pipe.zadd(self.keys.tasks(), uid, uid).ignore();
            if let Some(score) = finish_score(&record) {
                pipe.zadd(self.keys.tasks_finished(), uid, score).ignore();
            }
            pipe.exec_async(&mut conn).await.map_err(redis_err)?;
            Ok(record)
        })
        .await
    }

    async fn task_sequence(&self) -> StoreResult<Option<u64>> {
        self.run("task_sequence", async {
            let v: Option<u64> = self.conn().get(self.keys.task_seq()).await.map_err(redis_err)?;
            Ok(v)
        })
        .await
    }

    async fn raise_task_sequence(&self, at_least: u64) -> StoreResult<u64> {
        self.run("raise_task_sequence", async {
            let v: u64 = RAISE
                .key(self.keys.task_seq())
                .arg(at_least)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(v)
        })
        .await
    }

    async fn get_task(&self, uid: u64) -> StoreResult<Option<TaskRecord>> {
        self.run("get_task", async {
            let v: Option<String> =
                self.conn().get(self.keys.task(uid)).await.map_err(redis_err)?;
            v.map(|v| from_json("task", &v)).transpose()
        })
        .await
    }

    async fn update_task(&self, task: &TaskRecord) -> StoreResult<()> {
        let json = to_json("task", task)?;
        let score = finish_score(task).map(|s| s.to_string()).unwrap_or_default();
        self.run("update_task", async {
            let found: i64 = UPDATE
                .key(self.keys.task(task.uid))
                .key(self.keys.tasks_finished())
                .arg(json)
                .arg(task.uid)
                .arg(score)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            if found == 0 {
                return Err(StoreError::NotFound(format!("task {}", task.uid)));
            }
            Ok(())
        })
        .await
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> StoreResult<TaskPage> {
        self.run("list_tasks", async {
            let mut conn = self.conn();
            let in_page = |t: &TaskRecord| filter.from.is_none_or(|from| t.uid <= from);
            let mut matching = Vec::new();
            let mut total = 0u64;
            let unfiltered = is_unfiltered(filter);
            if !filter.uids.is_empty() {
                let mut uids = filter.uids.clone();
                uids.sort_unstable_by(|a, b| b.cmp(a));
                uids.dedup();
                for task in self.read_tasks(&mut conn, &uids).await? {
                    if filter.matches(&task) {
                        total += 1;
                        if in_page(&task) {
                            matching.push(task);
                        }
                    }
                }
            } else {
                let mut max =
                    filter.from.filter(|_| unfiltered).map_or("+inf".to_owned(), |f| f.to_string());
                loop {
                    let uids: Vec<u64> = redis::cmd("ZREVRANGEBYSCORE")
                        .arg(self.keys.tasks())
                        .arg(&max)
                        .arg("-inf")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(BATCH)
                        .query_async(&mut conn)
                        .await
                        .map_err(redis_err)?;
                    let Some(last) = uids.last() else { break };
                    max = format!("({last}");
                    let full = uids.len() < BATCH as usize;
                    for task in self.read_tasks(&mut conn, &uids).await? {
                        if filter.matches(&task) {
                            total += 1;
                            if in_page(&task) {
                                matching.push(task);
                            }
                        }
                    }
                    if full || (unfiltered && matching.len() > filter.limit) {
                        break;
                    }
                }
                if unfiltered {
                    total = conn.zcard(self.keys.tasks()).await.map_err(redis_err)?;
                }
            }
            let next = matching.get(filter.limit).map(|t| t.uid);
            matching.truncate(filter.limit);
            Ok(TaskPage { results: matching, total, next })
        })
        .await
    }

    async fn prune_tasks(
        &self,
        older_than: OffsetDateTime,
        limit: usize,
        fence: &Fence,
    ) -> StoreResult<u64> {
        self.run("prune_tasks", async {
            let mut conn = self.conn();
            // Scores are milliseconds: read the earliest candidates, compare exact dates here,
            // and let the script check the fence and delete in one atomic step.
            let candidates: Vec<u64> = redis::cmd("ZRANGEBYSCORE")
                .arg(self.keys.tasks_finished())
                .arg("-inf")
                .arg(unix_ms(older_than))
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut conn)
                .await
                .map_err(redis_err)?;
            let tasks = self.read_tasks(&mut conn, &candidates).await?;
            let young: HashSet<u64> = tasks
                .iter()
                .filter(|t| {
                    !(t.status.is_terminal() && t.finished_at.is_some_and(|f| f < older_than))
                })
                .map(|t| t.uid)
                .collect();
            // A candidate without a record is a stale index entry: the script drops it too.
            let old: Vec<u64> = candidates.into_iter().filter(|u| !young.contains(u)).collect();
            let mut script = PRUNE.key(self.keys.lease_token(&fence.lease));
            script.key(self.keys.tasks()).key(self.keys.tasks_finished());
            for uid in &old {
                script.key(self.keys.task(*uid));
            }
            script.arg(fence.token).arg(unix_ms(older_than)).arg(&old);
            let deleted: i64 = script.invoke_async(&mut conn).await.map_err(redis_err)?;
            if deleted < 0 {
                return Err(stale_fence(Some(fence)));
            }
            Ok(deleted as u64)
        })
        .await
    }

    async fn delete_tasks(&self, uids: &[u64]) -> StoreResult<u64> {
        self.run("delete_tasks", async {
            let mut conn = self.conn();
            let mut deleted = 0;
            for chunk in uids.chunks(BATCH as usize) {
                let tasks = self.read_tasks(&mut conn, chunk).await?;
                let done: Vec<u64> =
                    tasks.iter().filter(|t| t.status.is_terminal()).map(|t| t.uid).collect();
                if done.is_empty() {
                    continue;
                }
                let keys: Vec<String> = done.iter().map(|u| self.keys.task(*u)).collect();
                let mut pipe = redis::pipe();
                pipe.atomic().del(keys).ignore();
                pipe.zrem(self.keys.tasks(), &done).ignore();
                pipe.zrem(self.keys.tasks_finished(), &done).ignore();
                pipe.exec_async(&mut conn).await.map_err(redis_err)?;
                deleted += done.len() as u64;
            }
            Ok(deleted)
        })
        .await
    }
}
