//! CDC cursors (one monotonic integer per key) and the change log (one row per event).

use async_trait::async_trait;
use miroir_store::{CdcCursors, CdcEntry, CdcLog, StoreError, StoreResult};
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

#[async_trait]
impl CdcLog for SqliteStore {
    async fn append_cdc_entries(&self, events: &[(String, Vec<u8>)]) -> StoreResult<Vec<u64>> {
        let events = events.to_vec();
        self.call("append_cdc_entries", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let positions = append_in(&tx, &events)?;
            tx.commit().map_err(sql_err)?;
            Ok(positions)
        })
        .await
    }

    async fn cdc_entries(
        &self,
        index_uid: &str,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<CdcEntry>> {
        let index_uid = index_uid.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call("cdc_entries", move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT seq, payload FROM cdc_log WHERE index_uid = ?1 AND seq > ?2
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(sql_err)?;
            let rows = select
                .query_map(params![index_uid, after, limit], |r| {
                    Ok(CdcEntry {
                        index_uid: index_uid.clone(),
                        seq: r.get(0)?,
                        payload: r.get(1)?,
                    })
                })
                .map_err(sql_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
        })
        .await
    }

    async fn cdc_span(&self, index_uid: &str) -> StoreResult<Option<(u64, u64)>> {
        let index_uid = index_uid.to_owned();
        self.call("cdc_span", move |conn| {
            let (first, last): (Option<u64>, Option<u64>) = conn
                .query_row(
                    "SELECT (SELECT MIN(seq) FROM cdc_log WHERE index_uid = ?1),
                            (SELECT value FROM sequences WHERE name = 'cdc:' || ?1)",
                    [index_uid],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(sql_err)?;
            Ok(first.zip(last))
        })
        .await
    }

    async fn cdc_indexes(&self) -> StoreResult<Vec<String>> {
        self.call("cdc_indexes", move |conn| {
            let mut select = conn
                .prepare_cached("SELECT DISTINCT index_uid FROM cdc_log ORDER BY index_uid")
                .map_err(sql_err)?;
            let rows = select.query_map([], |r| r.get(0)).map_err(sql_err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(sql_err)
        })
        .await
    }

    async fn trim_cdc_entries(&self, index_uid: &str, below: u64) -> StoreResult<u64> {
        let index_uid = index_uid.to_owned();
        self.call("trim_cdc_entries", move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM cdc_log WHERE index_uid = ?1 AND seq < ?2",
                    params![index_uid, below],
                )
                .map_err(sql_err)?;
            Ok(n as u64)
        })
        .await
    }
}

/// Appends `events` (index uid, serialized event) within `tx`; the position given to each.
pub(crate) fn append_in(
    tx: &rusqlite::Transaction<'_>,
    events: &[(String, Vec<u8>)],
) -> StoreResult<Vec<u64>> {
    let mut positions = Vec::with_capacity(events.len());
    // The sequence outlives trimmed rows, so a position is never given twice.
    let mut next = tx
        .prepare_cached(
            "INSERT INTO sequences (name, value) VALUES ('cdc:' || ?1, 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        )
        .map_err(sql_err)?;
    let mut insert = tx
        .prepare_cached("INSERT INTO cdc_log (index_uid, seq, payload) VALUES (?1, ?2, ?3)")
        .map_err(sql_err)?;
    for (index_uid, payload) in events {
        let seq: u64 = next.query_row([index_uid], |r| r.get(0)).map_err(sql_err)?;
        insert.execute(params![index_uid, seq, payload]).map_err(sql_err)?;
        positions.push(seq);
    }
    Ok(positions)
}
