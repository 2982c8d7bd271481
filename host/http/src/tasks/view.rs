//! Tasks as Meilisearch shows them.

use miroir_store::TaskRecord;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::tasks::record::HINTS_KEY;

/// A date as Meilisearch writes it (RFC 3339).
pub fn date(date: OffsetDateTime) -> Value {
    date.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

fn optional_date(value: Option<OffsetDateTime>) -> Value {
    value.map(date).unwrap_or(Value::Null)
}

/// The `202 Accepted` answer of a write.
pub fn summary(task: &TaskRecord) -> Value {
    json!({
        "taskUid": task.uid,
        "indexUid": task.index_uid,
        "status": "enqueued",
        "type": task.kind,
        "enqueuedAt": date(task.enqueued_at),
    })
}

/// Client-visible details: the stored ones without Miroir's hints.
pub fn visible_details(details: Option<&Value>) -> Value {
    match details {
        Some(Value::Object(map)) => {
            let mut map = map.clone();
            map.remove(HINTS_KEY);
            Value::Object(map)
        }
        Some(other) => other.clone(),
        None => Value::Null,
    }
}

/// A task object with Meilisearch's fields.
pub fn render(task: &TaskRecord) -> Value {
    let duration = match (task.started_at, task.finished_at) {
        (Some(start), Some(end)) => {
            Value::String(format!("PT{}S", (end - start).as_seconds_f64().max(0.0)))
        }
        _ => Value::Null,
    };
    json!({
        "uid": task.uid,
        // A Miroir task is its own batch, from the moment it starts.
        "batchUid": if task.started_at.is_some() { Value::from(task.uid) } else { Value::Null },
        "indexUid": task.index_uid,
        "status": task.status.as_str(),
        "type": task.kind,
        "canceledBy": Value::Null,
        // A snapshot task has no details on a node.
        "details": if task.kind == "snapshotCreation" {
            Value::Null
        } else {
            visible_details(task.details.as_ref())
        },
        "error": task.error.clone().unwrap_or(Value::Null),
        "duration": duration,
        "enqueuedAt": date(task.enqueued_at),
        "startedAt": optional_date(task.started_at),
        "finishedAt": optional_date(task.finished_at),
    })
}
