//! Rebalance run state with compare-and-set versions.

use async_trait::async_trait;
use miroir_store::{Fence, RebalanceStore, StoreError, StoreResult, Versioned};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::error::{json_col, sql_err};
use crate::leases::check_fence_in;
use crate::SqliteStore;

#[async_trait]
impl RebalanceStore for SqliteStore {
    async fn get_rebalance(&self, run_id: &str) -> StoreResult<Option<Versioned>> {
        let run_id = run_id.to_owned();
        self.call("get_rebalance", move |conn| {
            let row: Option<(u64, String)> = conn
                .query_row("SELECT version, doc FROM rebalance WHERE run_id = ?1", [run_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(sql_err)?;
            row.map(|(version, doc)| Ok(Versioned { version, doc: json_col(&doc)? })).transpose()
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
        let (run_id, doc, fence) = (run_id.to_owned(), doc.to_string(), fence.cloned());
        self.call("save_rebalance", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            if let Some(fence) = &fence {
                check_fence_in(&tx, fence)?;
            }
            let current: u64 = tx
                .query_row("SELECT version FROM rebalance WHERE run_id = ?1", [&run_id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(sql_err)?
                .unwrap_or(0);
            if current != expected_version {
                return Err(StoreError::Conflict(format!(
                    "rebalance run `{run_id}` is at version {current}, not {expected_version}"
                )));
            }
            let version = current + 1;
            tx.execute(
                "INSERT OR REPLACE INTO rebalance (run_id, version, doc) VALUES (?1, ?2, ?3)",
                params![run_id, version, doc],
            )
            .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            Ok(version)
        })
        .await
    }

    async fn list_rebalance_runs(&self) -> StoreResult<Vec<String>> {
        self.call("list_rebalance_runs", |conn| {
            let mut st =
                conn.prepare("SELECT run_id FROM rebalance ORDER BY run_id").map_err(sql_err)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(sql_err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(sql_err)
        })
        .await
    }

    async fn delete_rebalance(&self, run_id: &str) -> StoreResult<bool> {
        let run_id = run_id.to_owned();
        self.call("delete_rebalance", move |conn| {
            Ok(conn
                .execute("DELETE FROM rebalance WHERE run_id = ?1", [run_id])
                .map_err(sql_err)?
                == 1)
        })
        .await
    }
}
