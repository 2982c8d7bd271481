//! Verify and commit of a settings change, in the background.

use std::time::Duration;

use futures_util::future::join_all;
use miroir_cluster::NodeAuth;
use miroir_store::TaskStatus;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::tasks::refresh;
use crate::AppState;
use axum::http::Method;

/// How long a settings task may take before verification gives up.
const VERIFY_LIMIT: Duration = Duration::from_secs(600);

/// A hash of `value` that ignores object key order.
pub fn canonical_hash(value: &Value) -> String {
    fn canonical(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    let bytes = serde_json::to_vec(&canonical(value)).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// Waits for task `task_uid`, then compares every node's settings of `uid` and bumps the
/// settings version when they agree.
pub fn spawn(state: AppState, uid: String, task_uid: u64) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + VERIFY_LIMIT;
        let mut pause = Duration::from_millis(20);
        let status = loop {
            let record = match state.store().get_task(task_uid).await {
                Ok(Some(record)) => record,
                _ => return,
            };
            match refresh(&state, record).await {
                Ok(record) if record.status.is_terminal() => break record.status,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, task_uid, "cannot refresh a settings task"),
            }
            if tokio::time::Instant::now() > deadline {
                tracing::warn!(task_uid, index = %uid, "settings task did not finish; not verified");
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        };
        if status != TaskStatus::Succeeded {
            return;
        }
        let path = format!("/indexes/{uid}/settings");
        let clients = state.clients();
        let reads = clients.iter().map(|client| {
            let path = path.clone();
            async move {
                let response =
                    client.send(Method::GET, &path, None, NodeAuth::NodeKey).await.ok()?;
                response
                    .is_success()
                    .then(|| (client.id().clone(), canonical_hash(&response.json())))
            }
        });
        let hashes: Vec<_> = join_all(reads).await;
        let distinct: std::collections::BTreeSet<&String> =
            hashes.iter().flatten().map(|(_, hash)| hash).collect();
        if distinct.len() != 1 || hashes.iter().any(Option::is_none) {
            // Possibly a later change still applying; the leader's drift check repairs what
            // remains once every node is idle.
            tracing::warn!(index = %uid, task_uid, "node settings diverge after a settings change");
            return;
        }
        let bumped =
            state.catalog().bump_settings_version(&uid, OffsetDateTime::now_utc(), None).await;
        state.read_catalog().forget(&uid);
        match bumped {
            Ok(version) => tracing::info!(index = %uid, version, "settings committed"),
            Err(error) => tracing::warn!(%error, index = %uid, "cannot commit settings version"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_hash_ignores_key_order_but_not_list_order() {
        assert_eq!(
            canonical_hash(&json!({"a": 1, "b": [1, 2]})),
            canonical_hash(&json!({"b": [1, 2], "a": 1}))
        );
        assert_ne!(canonical_hash(&json!({"b": [1, 2]})), canonical_hash(&json!({"b": [2, 1]})));
    }
}
