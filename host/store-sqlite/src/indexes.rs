//! The index catalog.

use async_trait::async_trait;
use miroir_store::clock::{from_nanos, to_nanos};
use miroir_store::{Fence, IndexCatalog, IndexMeta, StoreError, StoreResult};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use crate::error::sql_err;
use crate::leases::check_fence_in;
use crate::SqliteStore;

const COLUMNS: &str =
    "uid, shard_count, primary_key, settings_version, settings, fields, created_at, updated_at";

/// One `indexes` row as read: uid, S, primary key, version, settings and fields JSON, dates.
type RawRow = (String, u32, Option<String>, u64, String, String, i64, i64);

fn read_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn decode(raw: RawRow) -> StoreResult<IndexMeta> {
    let (uid, shard_count, primary_key, settings_version, settings, fields, created, updated) = raw;
    let corrupt = |what: &str, e: serde_json::Error| {
        StoreError::Corrupt(format!("index `{uid}` {what}: {e}"))
    };
    Ok(IndexMeta {
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("settings", e))?,
        fields: serde_json::from_str(&fields).map_err(|e| corrupt("fields", e))?,
        uid,
        shard_count,
        primary_key,
        settings_version,
        created_at: from_nanos(created)?,
        updated_at: from_nanos(updated)?,
    })
}

async fn write(
    store: &SqliteStore,
    op: &'static str,
    meta: &IndexMeta,
    upsert: bool,
) -> StoreResult<()> {
    let meta = meta.clone();
    let (created, updated) = (to_nanos(meta.created_at)?, to_nanos(meta.updated_at)?);
    let settings = meta.settings.to_string();
    let fields = serde_json::Value::from(meta.fields.clone()).to_string();
    let verb = if upsert { "INSERT OR REPLACE" } else { "INSERT" };
    store
        .call(op, move |conn| {
            let result = conn.execute(
                &format!("{verb} INTO indexes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    meta.uid,
                    meta.shard_count,
                    meta.primary_key,
                    meta.settings_version,
                    settings,
                    fields,
                    created,
                    updated
                ],
            );
            match result.map_err(sql_err) {
                Err(StoreError::Conflict(_)) => {
                    Err(StoreError::Conflict(format!("index `{}` already exists", meta.uid)))
                }
                other => other.map(|_| ()),
            }
        })
        .await
}

#[async_trait]
impl IndexCatalog for SqliteStore {
    async fn create_index(&self, meta: &IndexMeta) -> StoreResult<()> {
        write(self, "create_index", meta, false).await
    }

    async fn put_index(&self, meta: &IndexMeta) -> StoreResult<()> {
        write(self, "put_index", meta, true).await
    }

    async fn get_index(&self, uid: &str) -> StoreResult<Option<IndexMeta>> {
        let uid = uid.to_owned();
        self.call("get_index", move |conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM indexes WHERE uid = ?1"),
                [uid],
                read_row,
            )
            .optional()
            .map_err(sql_err)?
            .map(decode)
            .transpose()
        })
        .await
    }

    async fn list_indexes(&self) -> StoreResult<Vec<IndexMeta>> {
        self.call("list_indexes", |conn| {
            let mut st = conn
                .prepare(&format!("SELECT {COLUMNS} FROM indexes ORDER BY uid"))
                .map_err(sql_err)?;
            let rows = st.query_map([], read_row).map_err(sql_err)?;
            rows.map(|r| r.map_err(sql_err).and_then(decode)).collect()
        })
        .await
    }

    async fn delete_index(&self, uid: &str) -> StoreResult<bool> {
        let uid = uid.to_owned();
        self.call("delete_index", move |conn| {
            Ok(conn.execute("DELETE FROM indexes WHERE uid = ?1", [uid]).map_err(sql_err)? == 1)
        })
        .await
    }

    async fn bump_settings_version(
        &self,
        uid: &str,
        now: OffsetDateTime,
        fence: Option<&Fence>,
    ) -> StoreResult<u64> {
        let (uid, fence, now) = (uid.to_owned(), fence.cloned(), to_nanos(now)?);
        self.call("bump_settings_version", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            if let Some(fence) = &fence {
                check_fence_in(&tx, fence)?;
            }
            let version: Option<u64> = tx
                .query_row(
                    "UPDATE indexes SET settings_version = settings_version + 1, updated_at = ?2
                     WHERE uid = ?1 RETURNING settings_version",
                    params![uid, now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?;
            let version = version.ok_or_else(|| StoreError::NotFound(format!("index `{uid}`")))?;
            tx.commit().map_err(sql_err)?;
            Ok(version)
        })
        .await
    }
}
