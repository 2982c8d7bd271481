//! Renaming an index (`PATCH /indexes/{uid}` with a new `uid`): every node renames its own copy
//! in its task; Miroir renames its catalog entry (shard count, primary key, settings, fields)
//! when the Miroir task has succeeded, as one node's index takes its new name only when the task
//! is processed. A task that failed (the new name is taken, …) leaves the catalog as it was.

use miroir_store::{TaskRecord, TaskStatus};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::HttpResult;
use crate::AppState;

/// The old and new names of a rename task, if `record` is one.
fn renamed(record: &TaskRecord) -> Option<(&str, &str)> {
    if record.kind != "indexUpdate" {
        return None;
    }
    let details = record.details.as_ref()?;
    let old = details.get("oldIndexUid").and_then(Value::as_str)?;
    let new = details.get("newIndexUid").and_then(Value::as_str)?;
    Some((old, new))
}

/// Called when Miroir task `record` has just finished: applies a successful rename to the
/// catalog.
pub async fn task_finished(state: &AppState, record: &TaskRecord) -> HttpResult<()> {
    let Some((old, new)) = renamed(record) else { return Ok(()) };
    if record.status != TaskStatus::Succeeded {
        return Ok(());
    }
    let Some(mut meta) = state.store().get_index(old).await? else { return Ok(()) };
    meta.uid = new.to_owned();
    meta.updated_at = OffsetDateTime::now_utc();
    state.catalog().create_index(&meta).await?;
    state.catalog().delete_index(old).await?;
    state.read_catalog().forget(old);
    state.read_catalog().forget(new);
    tracing::info!(old, new, task = record.uid, "index renamed");
    Ok(())
}
