//! Idempotency keys, expiring by timestamp.

use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::{now_ms, ttl_ms};
use miroir_store::{IdempotencyRecord, IdempotencyStore, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::sql_err;
use crate::SqliteStore;

fn live(conn: &Connection, key: &str, now: i64) -> StoreResult<Option<IdempotencyRecord>> {
    conn.prepare_cached(
        "SELECT body_hash, task_uid FROM idempotency WHERE key = ?1 AND expires_at > ?2",
    )
    .and_then(|mut st| {
        st.query_row(params![key, now], |r| {
            Ok(IdempotencyRecord { body_hash: r.get(0)?, task_uid: r.get(1)? })
        })
        .optional()
    })
    .map_err(sql_err)
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn put_idempotency_if_absent(
        &self,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let (key, record, ttl) = (key.to_owned(), record.clone(), ttl_ms(ttl));
        self.call("put_idempotency_if_absent", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let now = now_ms();
            if let Some(existing) = live(&tx, &key, now)? {
                return Ok(Some(existing));
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (key, body_hash, task_uid, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![key, record.body_hash, record.task_uid, now + ttl])
            })
            .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            Ok(None)
        })
        .await
    }

    async fn get_idempotency(&self, key: &str) -> StoreResult<Option<IdempotencyRecord>> {
        let key = key.to_owned();
        self.call("get_idempotency", move |conn| live(conn, &key, now_ms())).await
    }

    async fn idempotency_count(&self) -> StoreResult<u64> {
        self.call("idempotency_count", move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM idempotency WHERE expires_at > ?1",
                [now_ms()],
                |row| row.get::<_, u64>(0),
            )
            .map_err(sql_err)
        })
        .await
    }
}
