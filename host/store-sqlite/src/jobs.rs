//! The background job queue. Claims are rows in state `claimed` with a `lease_until` in Unix
//! milliseconds; a claim whose lease ended goes back to `queued` before the next pick.

use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::{now_ms, ttl_ms};
use miroir_store::{Job, JobDepth, JobQueue, JobState, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use crate::error::{json_col, sql_err};
use crate::SqliteStore;

const COLUMNS: &str = "id, kind, payload, state, attempts, worker, last_error";

type RawJob = (u64, String, String, String, u32, Option<String>, Option<String>);

fn read_row(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn decode((id, kind, payload, state, attempts, worker, last_error): RawJob) -> StoreResult<Job> {
    let state = match state.as_str() {
        "queued" => JobState::Queued,
        "claimed" => JobState::Claimed,
        "failed" => JobState::Failed,
        other => return Err(StoreError::Corrupt(format!("job {id} has unknown state `{other}`"))),
    };
    Ok(Job { id, kind, payload: json_col(&payload)?, state, attempts, worker, last_error })
}

fn requeue_expired(conn: &Connection, now: i64) -> StoreResult<u64> {
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL
             WHERE state = 'claimed' AND lease_until <= ?1",
        )
        .and_then(|mut st| st.execute([now]))
        .map_err(sql_err)?;
    Ok(n as u64)
}

fn not_holder(id: u64, worker: &str) -> StoreError {
    StoreError::Conflict(format!("job {id} is not claimed by `{worker}`"))
}

#[async_trait]
impl JobQueue for SqliteStore {
    async fn enqueue_job(&self, kind: &str, payload: &serde_json::Value) -> StoreResult<u64> {
        let (kind, payload) = (kind.to_owned(), payload.to_string());
        self.call("enqueue_job", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let id: u64 = tx
                .query_row(
                    "INSERT INTO sequences (name, value) VALUES ('job', 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                    [],
                    |row| row.get(0),
                )
                .map_err(sql_err)?;
            tx.execute(
                "INSERT INTO jobs (id, kind, payload, state) VALUES (?1, ?2, ?3, 'queued')",
                params![id, kind, payload],
            )
            .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            Ok(id)
        })
        .await
    }

    async fn claim_job(&self, worker: &str, lease: Duration) -> StoreResult<Option<Job>> {
        let (worker, lease) = (worker.to_owned(), ttl_ms(lease));
        self.call("claim_job", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let now = now_ms();
            requeue_expired(&tx, now)?;
            let raw = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET state = 'claimed', worker = ?1, lease_until = ?2,
                     attempts = attempts + 1
                     WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
                     RETURNING {COLUMNS}"
                ))
                .and_then(|mut st| st.query_row(params![worker, now + lease], read_row).optional())
                .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            raw.map(decode).transpose()
        })
        .await
    }

    async fn extend_job(&self, id: u64, worker: &str, lease: Duration) -> StoreResult<()> {
        let (worker, lease) = (worker.to_owned(), ttl_ms(lease));
        self.call("extend_job", move |conn| {
            let n = conn
                .execute(
                    "UPDATE jobs SET lease_until = ?3
                     WHERE id = ?1 AND state = 'claimed' AND worker = ?2",
                    params![id, worker, now_ms() + lease],
                )
                .map_err(sql_err)?;
            if n == 0 {
                return Err(not_holder(id, &worker));
            }
            Ok(())
        })
        .await
    }

    async fn complete_job(&self, id: u64, worker: &str) -> StoreResult<()> {
        let worker = worker.to_owned();
        self.call("complete_job", move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM jobs WHERE id = ?1 AND state = 'claimed' AND worker = ?2",
                    params![id, worker],
                )
                .map_err(sql_err)?;
            if n == 0 {
                return Err(not_holder(id, &worker));
            }
            Ok(())
        })
        .await
    }

    async fn fail_job(&self, id: u64, worker: &str, error: &str, retry: bool) -> StoreResult<()> {
        let (worker, error) = (worker.to_owned(), error.to_owned());
        let state = if retry { JobState::Queued } else { JobState::Failed };
        self.call("fail_job", move |conn| {
            let n = conn
                .execute(
                    "UPDATE jobs SET state = ?3, worker = NULL, lease_until = NULL, last_error = ?4
                     WHERE id = ?1 AND state = 'claimed' AND worker = ?2",
                    params![id, worker, state.as_str(), error],
                )
                .map_err(sql_err)?;
            if n == 0 {
                return Err(not_holder(id, &worker));
            }
            Ok(())
        })
        .await
    }

    async fn requeue_expired_jobs(&self) -> StoreResult<u64> {
        self.call("requeue_expired_jobs", |conn| requeue_expired(conn, now_ms())).await
    }

    async fn get_job(&self, id: u64) -> StoreResult<Option<Job>> {
        self.call("get_job", move |conn| {
            conn.query_row(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), [id], read_row)
                .optional()
                .map_err(sql_err)?
                .map(decode)
                .transpose()
        })
        .await
    }

    async fn job_depth(&self) -> StoreResult<JobDepth> {
        self.call("job_depth", |conn| {
            let mut st =
                conn.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state").map_err(sql_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))
                .map_err(sql_err)?;
            let mut depth = JobDepth::default();
            for row in rows {
                match row.map_err(sql_err)? {
                    (s, n) if s == "queued" => depth.queued = n,
                    (s, n) if s == "claimed" => depth.claimed = n,
                    (_, n) => depth.failed += n,
                }
            }
            Ok(depth)
        })
        .await
    }
}
