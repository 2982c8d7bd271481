//! Sessions, expiring by timestamp and bounded in number (see [`miroir_store::SessionLimits`]).

use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::{now_ms, ttl_ms};
use miroir_store::{SessionRecord, SessionStore, StoreResult};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::error::sql_err;
use crate::SqliteStore;

#[async_trait]
impl SessionStore for SqliteStore {
    async fn put_session(
        &self,
        id: &str,
        record: &SessionRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let (id, record, ttl) = (id.to_owned(), record.clone(), ttl_ms(ttl));
        let max = self.session_limits().max_sessions;
        self.call("put_session", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let now = now_ms();
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now]).map_err(sql_err)?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sessions (id, last_write_task, grp, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| {
                st.execute(params![id, record.last_write_task, record.group, now + ttl])
            })
            .map_err(sql_err)?;
            let count: u64 =
                tx.query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).map_err(sql_err)?;
            if count > max {
                tx.execute(
                    "DELETE FROM sessions WHERE id IN (
                         SELECT id FROM sessions WHERE id != ?1
                         ORDER BY expires_at ASC, id ASC LIMIT ?2)",
                    params![id, count - max],
                )
                .map_err(sql_err)?;
            }
            tx.commit().map_err(sql_err)?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let id = id.to_owned();
        self.call("get_session", move |conn| {
            conn.prepare_cached(
                "SELECT last_write_task, grp FROM sessions WHERE id = ?1 AND expires_at > ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![id, now_ms()], |r| {
                    Ok(SessionRecord { last_write_task: r.get(0)?, group: r.get(1)? })
                })
                .optional()
            })
            .map_err(sql_err)
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.call("delete_session", move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM sessions WHERE id = ?1 AND expires_at > ?2",
                    params![id, now_ms()],
                )
                .map_err(sql_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn session_count(&self) -> StoreResult<u64> {
        self.call("session_count", |conn| {
            conn.query_row("SELECT COUNT(*) FROM sessions WHERE expires_at > ?1", [now_ms()], |r| {
                r.get(0)
            })
            .map_err(sql_err)
        })
        .await
    }
}
