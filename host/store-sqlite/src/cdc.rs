//! CDC cursors, one monotonic integer per index.

use async_trait::async_trait;
use miroir_store::{CdcCursors, StoreError, StoreResult};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::error::sql_err;
use crate::SqliteStore;

#[async_trait]
impl CdcCursors for SqliteStore {
    async fn cdc_cursor(&self, index_uid: &str) -> StoreResult<u64> {
        let index_uid = index_uid.to_owned();
        self.call("cdc_cursor", move |conn| {
            let cursor: Option<u64> = conn
                .query_row(
                    "SELECT cursor FROM cdc_cursors WHERE index_uid = ?1",
                    [index_uid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?;
            Ok(cursor.unwrap_or(0))
        })
        .await
    }

    async fn advance_cdc_cursor(&self, index_uid: &str, to: u64) -> StoreResult<u64> {
        let index_uid = index_uid.to_owned();
        self.call("advance_cdc_cursor", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let current: u64 = tx
                .query_row(
                    "SELECT cursor FROM cdc_cursors WHERE index_uid = ?1",
                    [&index_uid],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?
                .unwrap_or(0);
            if to < current {
                return Err(StoreError::Conflict(format!(
                    "CDC cursor of `{index_uid}` is at {current}; it cannot move back to {to}"
                )));
            }
            tx.execute(
                "INSERT OR REPLACE INTO cdc_cursors (index_uid, cursor) VALUES (?1, ?2)",
                params![index_uid, to],
            )
            .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            Ok(to)
        })
        .await
    }
}
