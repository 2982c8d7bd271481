//! The event as sinks and readers see it.

use miroir_types::WriteEvent;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The JSON of `event`, without its cursor (the log gives it): `event_id` (`<index>:<task
/// uid>`, the same on every delivery), `task_uid`, `index`, `operation`, `primary_keys`,
/// `shards`, `timestamp` (RFC 3339, when the write reached quorum), `partial_update` on
/// additions and updates (`true`: sent with `PUT`, the documents' fields merge into the stored
/// ones; `false`: sent with `POST`, they replace them), and `documents` when the write carried
/// them (`cdc.include_documents`).
pub fn event_json(event: &WriteEvent) -> Value {
    let nanos = i128::from(event.timestamp_ms) * 1_000_000;
    let timestamp = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    let mut json = json!({
        "event_id": event.event_id,
        "task_uid": event.task_uid,
        "index": event.index,
        "operation": event.operation,
        "primary_keys": event.primary_keys,
        "shards": event.shards,
        "timestamp": timestamp,
    });
    if event.operation == "documentAdditionOrUpdate" {
        json["partial_update"] = event.partial_update.into();
    }
    if let Some(documents) = &event.documents {
        json["documents"] = documents.clone();
    }
    json
}

/// `stored` (an event as the log holds it) with its `cursor` first.
pub(crate) fn with_cursor(cursor: u64, stored: &[u8]) -> Value {
    let mut event = serde_json::Map::new();
    event.insert("cursor".into(), cursor.into());
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(stored) {
        event.extend(fields);
    }
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_identity_and_a_readable_time() {
        let event = WriteEvent {
            event_id: "movies:7".into(),
            task_uid: 7,
            index: "movies".into(),
            operation: "documentDeletion".into(),
            primary_keys: vec!["42".into()],
            shards: vec![3],
            timestamp_ms: 1_700_000_000_123,
            partial_update: false,
            documents: None,
        };
        let json = event_json(&event);
        assert_eq!(json["timestamp"], "2023-11-14T22:13:20.123Z");
        let read = with_cursor(5, &serde_json::to_vec(&json).expect("json"));
        assert_eq!(read["cursor"], 5);
        assert_eq!(read["event_id"], "movies:7");
        assert_eq!(read["primary_keys"], json!(["42"]));
    }
}
