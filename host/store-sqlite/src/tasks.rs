//! The task sequence and task records.

use std::collections::BTreeMap;

use async_trait::async_trait;
use miroir_store::clock::{from_nanos, to_nanos};
use miroir_store::{
    ChangeEntry, Fence, NewTask, StoreError, StoreResult, TaskFilter, TaskLog, TaskPage, TaskRecord,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row, TransactionBehavior};
use time::OffsetDateTime;

use crate::error::{json_col, sql_err};
use crate::leases::check_fence_in;
use crate::SqliteStore;

const COLUMNS: &str =
    "uid, index_uid, kind, status, enqueued_at, started_at, finished_at, details, error, node_tasks";

/// Row values in `COLUMNS` order, except the uid.
fn encode(task: &TaskRecord) -> StoreResult<[Value; 9]> {
    let json = |v: &Option<serde_json::Value>| match v {
        Some(v) => Value::Text(v.to_string()),
        None => Value::Null,
    };
    let date = |d: Option<OffsetDateTime>| -> StoreResult<Value> {
        Ok(d.map(to_nanos).transpose()?.map_or(Value::Null, Value::Integer))
    };
    let node_tasks = serde_json::to_string(&task.node_tasks)
        .map_err(|e| StoreError::Invalid(format!("node tasks: {e}")))?;
    Ok([
        task.index_uid.clone().map_or(Value::Null, Value::Text),
        Value::Text(task.kind.clone()),
        Value::Text(task.status.as_str().to_owned()),
        Value::Integer(to_nanos(task.enqueued_at)?),
        date(task.started_at)?,
        date(task.finished_at)?,
        json(&task.details),
        json(&task.error),
        Value::Text(node_tasks),
    ])
}

type RawTask = (u64, Option<String>, String, String, i64, Option<i64>, Option<i64>);
type RawJson = (Option<String>, Option<String>, String);

fn read_row(row: &Row<'_>) -> rusqlite::Result<(RawTask, RawJson)> {
    Ok((
        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?),
        (row.get(7)?, row.get(8)?, row.get(9)?),
    ))
}

fn decode((raw, json): (RawTask, RawJson)) -> StoreResult<TaskRecord> {
    let (uid, index_uid, kind, status, enqueued, started, finished) = raw;
    let (details, error, node_tasks) = json;
    let node_tasks: BTreeMap<String, u64> = serde_json::from_str(&node_tasks)
        .map_err(|e| StoreError::Corrupt(format!("task {uid} node tasks: {e}")))?;
    Ok(TaskRecord {
        uid,
        index_uid,
        kind,
        status: status.parse()?,
        enqueued_at: from_nanos(enqueued)?,
        started_at: started.map(from_nanos).transpose()?,
        finished_at: finished.map(from_nanos).transpose()?,
        details: details.as_deref().map(json_col).transpose()?,
        error: error.as_deref().map(json_col).transpose()?,
        node_tasks,
    })
}

/// The `WHERE` clause and its parameters for every filter except `from` and `limit`.
fn where_clause(filter: &TaskFilter) -> StoreResult<(String, Vec<Value>)> {
    let mut clauses = vec!["1 = 1".to_owned()];
    let mut params = Vec::new();
    let mut any_of = |column: &str, values: Vec<Value>| {
        if !values.is_empty() {
            let marks = vec!["?"; values.len()].join(", ");
            clauses.push(format!("{column} IN ({marks})"));
            params.extend(values);
        }
    };
    any_of("uid", filter.uids.iter().map(|u| Value::Integer(*u as i64)).collect());
    any_of("status", filter.statuses.iter().map(|s| Value::Text(s.as_str().into())).collect());
    any_of("kind", filter.kinds.iter().map(|k| Value::Text(k.clone())).collect());
    any_of("index_uid", filter.index_uids.iter().map(|i| Value::Text(i.clone())).collect());
    let bounds = [
        ("enqueued_at <", filter.before_enqueued_at),
        ("enqueued_at >", filter.after_enqueued_at),
        ("started_at <", filter.before_started_at),
        ("started_at >", filter.after_started_at),
        ("finished_at <", filter.before_finished_at),
        ("finished_at >", filter.after_finished_at),
    ];
    for (cmp, bound) in bounds {
        if let Some(date) = bound {
            // NULL never compares true, so a bound on an unset date excludes the task.
            clauses.push(format!("{cmp} ?"));
            params.push(Value::Integer(to_nanos(date)?));
        }
    }
    Ok((clauses.join(" AND "), params))
}

#[async_trait]
impl TaskLog for SqliteStore {
    async fn create_task(&self, task: NewTask) -> StoreResult<TaskRecord> {
        self.call("create_task", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let record = insert_task(&tx, task)?;
            tx.commit().map_err(sql_err)?;
            Ok(record)
        })
        .await
    }

    async fn create_task_with_change(
        &self,
        task: NewTask,
        change: ChangeEntry,
    ) -> StoreResult<(TaskRecord, Option<u64>)> {
        self.call("create_task_with_change", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let record = insert_task(&tx, task)?;
            let positions = crate::cdc::append_in(&tx, &[change(&record)])?;
            tx.commit().map_err(sql_err)?;
            Ok((record, positions.first().copied()))
        })
        .await
    }

    async fn task_sequence(&self) -> StoreResult<Option<u64>> {
        // The file holds its sequence for as long as it exists: never `None` here.
        self.call("task_sequence", |conn| {
            let value: Option<u64> = conn
                .query_row("SELECT value FROM sequences WHERE name = 'task'", [], |row| row.get(0))
                .optional()
                .map_err(sql_err)?;
            Ok(Some(value.unwrap_or(0)))
        })
        .await
    }

    async fn raise_task_sequence(&self, at_least: u64) -> StoreResult<u64> {
        self.call("raise_task_sequence", move |conn| {
            conn.query_row(
                "INSERT INTO sequences (name, value) VALUES ('task', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = max(value, ?1) RETURNING value",
                [at_least],
                |row| row.get(0),
            )
            .map_err(sql_err)
        })
        .await
    }

    async fn get_task(&self, uid: u64) -> StoreResult<Option<TaskRecord>> {
        self.call("get_task", move |conn| {
            let raw = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM tasks WHERE uid = ?1"))
                .and_then(|mut st| st.query_row([uid], read_row).optional())
                .map_err(sql_err)?;
            raw.map(decode).transpose()
        })
        .await
    }

    async fn update_task(&self, task: &TaskRecord) -> StoreResult<()> {
        let uid = task.uid;
        let [a, b, c, d, e, f, g, h, i] = encode(task)?;
        self.call("update_task", move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE tasks SET index_uid = ?2, kind = ?3, status = ?4, enqueued_at = ?5,
                     started_at = ?6, finished_at = ?7, details = ?8, error = ?9, node_tasks = ?10
                     WHERE uid = ?1",
                )
                .and_then(|mut st| st.execute(params![uid, a, b, c, d, e, f, g, h, i]))
                .map_err(sql_err)?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("task {uid}")));
            }
            Ok(())
        })
        .await
    }

    async fn list_tasks(&self, filter: &TaskFilter) -> StoreResult<TaskPage> {
        let (clause, params) = where_clause(filter)?;
        let from = filter.from.map(|f| f.min(i64::MAX as u64) as i64);
        let limit = filter.limit;
        self.call("list_tasks", move |conn| {
            let total: u64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM tasks WHERE {clause}"))
                .and_then(|mut st| st.query_row(params_from_iter(params.iter()), |r| r.get(0)))
                .map_err(sql_err)?;
            let mut page_params = params;
            let mut sql = format!("SELECT {COLUMNS} FROM tasks WHERE {clause}");
            if let Some(from) = from {
                sql.push_str(" AND uid <= ?");
                page_params.push(Value::Integer(from));
            }
            sql.push_str(" ORDER BY uid DESC LIMIT ?");
            page_params.push(Value::Integer(limit.saturating_add(1).min(i64::MAX as usize) as i64));
            let mut st = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = st
                .query_map(params_from_iter(page_params.iter()), read_row)
                .map_err(sql_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_err)?;
            let mut results = rows.into_iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
            let next = if results.len() > limit { results.pop().map(|t| t.uid) } else { None };
            Ok(TaskPage { results, total, next })
        })
        .await
    }

    async fn prune_tasks(
        &self,
        older_than: OffsetDateTime,
        limit: usize,
        fence: &Fence,
    ) -> StoreResult<u64> {
        let cutoff = to_nanos(older_than)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let fence = fence.clone();
        self.call("prune_tasks", move |conn| {
            // Immediate: the fence is read under the write lock, so no newer leader can be
            // elected between the check and the delete.
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            check_fence_in(&tx, &fence)?;
            let deleted = tx
                .prepare_cached(
                    "DELETE FROM tasks WHERE uid IN (
                       SELECT uid FROM tasks
                       WHERE finished_at IS NOT NULL AND finished_at < ?1
                       AND status IN ('succeeded', 'failed', 'canceled')
                       ORDER BY finished_at, uid LIMIT ?2)",
                )
                .and_then(|mut st| st.execute(params![cutoff, limit]))
                .map_err(sql_err)?;
            tx.commit().map_err(sql_err)?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn delete_tasks(&self, uids: &[u64]) -> StoreResult<u64> {
        let uids = uids.to_vec();
        self.call("delete_tasks", move |conn| {
            let tx = conn.transaction().map_err(sql_err)?;
            let mut deleted = 0;
            {
                let mut st = tx
                    .prepare_cached(
                        "DELETE FROM tasks WHERE uid = ?1
                         AND status IN ('succeeded', 'failed', 'canceled')",
                    )
                    .map_err(sql_err)?;
                for uid in uids {
                    deleted += st.execute([uid]).map_err(sql_err)? as u64;
                }
            }
            tx.commit().map_err(sql_err)?;
            Ok(deleted)
        })
        .await
    }
}

/// Records `task` under the next uid within `tx`.
fn insert_task(tx: &rusqlite::Transaction<'_>, task: NewTask) -> StoreResult<TaskRecord> {
    let uid: u64 = tx
        .query_row(
            "INSERT INTO sequences (name, value) VALUES ('task', 1)
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            [],
            |row| row.get(0),
        )
        .map_err(sql_err)?;
    let record = TaskRecord::from_new(uid, task);
    let [a, b, c, d, e, f, g, h, i] = encode(&record)?;
    tx.prepare_cached(&format!(
        "INSERT INTO tasks ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .and_then(|mut st| st.execute(params![uid, a, b, c, d, e, f, g, h, i]))
    .map_err(sql_err)?;
    Ok(record)
}
