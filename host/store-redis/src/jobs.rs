//! The job queue: one hash per job, and three sorted sets — queued and failed ids scored by id
//! (oldest first), claimed ids scored by lease deadline on the server clock.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::ttl_ms;
use miroir_store::{Job, JobDepth, JobQueue, JobState, StoreError, StoreResult};
use redis::{AsyncCommands, Script};

use crate::error::{from_json, parse_u64, redis_err};
use crate::lua::NOW;
use crate::RedisStore;

/// Moves expired claims back to the queue. Needs `now`; KEYS[1] claimed, KEYS[2] queued,
/// ARGV[1] job key prefix. Leaves the count in `requeued`.
const REQUEUE: &str = "
local requeued = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], id, id)
  redis.call('HSET', ARGV[1] .. id, 'state', 'queued')
  redis.call('HDEL', ARGV[1] .. id, 'worker')
  requeued = requeued + 1
end
";

/// Checks the claim. Needs KEYS[1] claimed, ARGV[1] job key prefix, ARGV[2] id, ARGV[3]
/// worker; returns 0 from the script unless `worker` holds the claim. Leaves the job key in
/// `job`.
const HOLDER: &str = "
local job = ARGV[1] .. ARGV[2]
if redis.call('ZSCORE', KEYS[1], ARGV[2]) == false
   or redis.call('HGET', job, 'worker') ~= ARGV[3] then
  return 0
end
";

/// KEYS: seq. ARGV: job key prefix, queued key, kind, payload. Returns the new id.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local id = redis.call('INCR', KEYS[1])
         redis.call('HSET', ARGV[1] .. id, 'kind', ARGV[3], 'payload', ARGV[4],
                    'state', 'queued', 'attempts', 0)
         redis.call('ZADD', ARGV[2], id, id)
         return id",
    )
});

/// KEYS: claimed, queued. ARGV: job key prefix, worker, lease ms. Returns the claimed id or 0.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{REQUEUE}
        local popped = redis.call('ZPOPMIN', KEYS[2])
        if #popped == 0 then return 0 end
        local id = popped[1]
        redis.call('HSET', ARGV[1] .. id, 'state', 'claimed', 'worker', ARGV[2])
        redis.call('HINCRBY', ARGV[1] .. id, 'attempts', 1)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
        return tonumber(id)"
    ))
});

/// KEYS: claimed, queued. ARGV: job key prefix. Returns how many claims were re-queued.
static REQUEUE_EXPIRED: LazyLock<Script> =
    LazyLock::new(|| Script::new(&format!("{NOW}{REQUEUE} return requeued")));

/// KEYS: claimed. ARGV: job key prefix, id, worker, lease ms.
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{HOLDER}
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
        return 1"
    ))
});

/// KEYS: claimed. ARGV: job key prefix, id, worker.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HOLDER}
        redis.call('ZREM', KEYS[1], ARGV[2])
        redis.call('DEL', job)
        return 1"
    ))
});

/// KEYS: claimed, target set (queued or failed). ARGV: job key prefix, id, worker, state, error.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HOLDER}
        redis.call('ZREM', KEYS[1], ARGV[2])
        redis.call('HSET', job, 'state', ARGV[4], 'last_error', ARGV[5])
        redis.call('HDEL', job, 'worker')
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[2])
        return 1"
    ))
});

fn decode(id: u64, mut hash: HashMap<String, String>) -> StoreResult<Option<Job>> {
    if hash.is_empty() {
        return Ok(None);
    }
    let mut field = |name: &str| {
        hash.remove(name).ok_or_else(|| StoreError::Corrupt(format!("job {id} has no `{name}`")))
    };
    let state = match field("state")?.as_str() {
        "queued" => JobState::Queued,
        "claimed" => JobState::Claimed,
        "failed" => JobState::Failed,
        other => return Err(StoreError::Corrupt(format!("job {id} state `{other}`"))),
    };
    let attempts = parse_u64("job attempts", &field("attempts")?)?;
    Ok(Some(Job {
        id,
        kind: field("kind")?,
        payload: from_json("job payload", &field("payload")?)?,
        state,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        worker: hash.remove("worker"),
        last_error: hash.remove("last_error"),
    }))
}

fn not_holder(id: u64, worker: &str) -> StoreError {
    StoreError::Conflict(format!("job {id} is not claimed by `{worker}`"))
}

#[async_trait]
impl JobQueue for RedisStore {
    async fn enqueue_job(&self, kind: &str, payload: &serde_json::Value) -> StoreResult<u64> {
        self.run("enqueue_job", async {
            ENQUEUE
                .key(self.keys.job_seq())
                .arg(self.keys.job_prefix())
                .arg(self.keys.jobs_queued())
                .arg(kind)
                .arg(payload.to_string())
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn claim_job(&self, worker: &str, lease: Duration) -> StoreResult<Option<Job>> {
        self.run("claim_job", async {
            let mut conn = self.conn();
            let id: u64 = CLAIM
                .key(self.keys.jobs_claimed())
                .key(self.keys.jobs_queued())
                .arg(self.keys.job_prefix())
                .arg(worker)
                .arg(ttl_ms(lease))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_err)?;
            if id == 0 {
                return Ok(None);
            }
            let hash: HashMap<String, String> =
                conn.hgetall(self.keys.job(id)).await.map_err(redis_err)?;
            decode(id, hash)
        })
        .await
    }

    async fn extend_job(&self, id: u64, worker: &str, lease: Duration) -> StoreResult<()> {
        self.run("extend_job", async {
            let ok: i64 = EXTEND
                .key(self.keys.jobs_claimed())
                .arg(self.keys.job_prefix())
                .arg(id)
                .arg(worker)
                .arg(ttl_ms(lease))
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            if ok == 1 {
                Ok(())
            } else {
                Err(not_holder(id, worker))
            }
        })
        .await
    }

    async fn complete_job(&self, id: u64, worker: &str) -> StoreResult<()> {
        self.run("complete_job", async {
            let ok: i64 = COMPLETE
                .key(self.keys.jobs_claimed())
                .arg(self.keys.job_prefix())
                .arg(id)
                .arg(worker)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            if ok == 1 {
                Ok(())
            } else {
                Err(not_holder(id, worker))
            }
        })
        .await
    }

    async fn fail_job(&self, id: u64, worker: &str, error: &str, retry: bool) -> StoreResult<()> {
        let (target, state) = if retry {
            (self.keys.jobs_queued(), JobState::Queued)
        } else {
            (self.keys.jobs_failed(), JobState::Failed)
        };
        self.run("fail_job", async {
            let ok: i64 = FAIL
                .key(self.keys.jobs_claimed())
                .key(target)
                .arg(self.keys.job_prefix())
                .arg(id)
                .arg(worker)
                .arg(state.as_str())
                .arg(error)
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            if ok == 1 {
                Ok(())
            } else {
                Err(not_holder(id, worker))
            }
        })
        .await
    }

    async fn requeue_expired_jobs(&self) -> StoreResult<u64> {
        self.run("requeue_expired_jobs", async {
            REQUEUE_EXPIRED
                .key(self.keys.jobs_claimed())
                .key(self.keys.jobs_queued())
                .arg(self.keys.job_prefix())
                .invoke_async(&mut self.conn())
                .await
                .map_err(redis_err)
        })
        .await
    }

    async fn get_job(&self, id: u64) -> StoreResult<Option<Job>> {
        self.run("get_job", async {
            let hash: HashMap<String, String> =
                self.conn().hgetall(self.keys.job(id)).await.map_err(redis_err)?;
            decode(id, hash)
        })
        .await
    }

    async fn job_depth(&self) -> StoreResult<JobDepth> {
        self.run("job_depth", async {
            let (queued, claimed, failed): (u64, u64, u64) = redis::pipe()
                .zcard(self.keys.jobs_queued())
                .zcard(self.keys.jobs_claimed())
                .zcard(self.keys.jobs_failed())
                .query_async(&mut self.conn())
                .await
                .map_err(redis_err)?;
            Ok(JobDepth { queued, claimed, failed })
        })
        .await
    }
}
