//! The default API keys, presented as one set.
//!
//! Every Meilisearch node started with a master key creates its own default keys ("Default
//! Search API Key", "Default Admin API Key", …) with its own random uids, so each node's
//! defaults are valid on that node only. Miroir presents one set instead: for every default key
//! a node holds, Miroir creates on every node a key of the same name, description, actions and
//! indexes under a uid derived from the name alone. Since a node derives a key's value from its
//! master key and the uid, and the nodes share their master key, that key has the same value on
//! every node. `GET /keys` through Miroir lists these and hides each node's own defaults.
//!
//! Deleting a default key through Miroir also deletes the nodes' own defaults of that name, so
//! the key is not created again later.

use std::collections::BTreeSet;

use axum::http::Method;
use futures_util::future::join_all;
use miroir_cluster::{NodeAuth, NodeBody};
use miroir_types::NodeId;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::AppState;

/// Whether `name` is the name of a key Meilisearch creates by itself.
pub fn is_default_name(name: &str) -> bool {
    name.starts_with("Default ") && name.ends_with(" API Key")
}

/// The uid Miroir gives its default key named `name` (the same for every Miroir instance).
pub fn miroir_uid(name: &str) -> String {
    let digest = Sha256::digest(format!("miroir default API key: {name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Whether `key` (one entry of a node's `GET /keys`) is a node's own default key, which Miroir
/// hides: a default name under any uid but Miroir's.
pub fn is_node_default(key: &Value) -> bool {
    let name = key.get("name").and_then(Value::as_str).unwrap_or_default();
    let uid = key.get("uid").and_then(Value::as_str).unwrap_or_default();
    is_default_name(name) && uid != miroir_uid(name)
}

/// Removes the nodes' own default keys from a `GET /keys` answer (a list or one key); returns
/// false when the answer was one such key (which Miroir then answers as not found).
pub fn hide_node_defaults(answer: &mut Value) -> bool {
    if let Some(results) = answer.get_mut("results").and_then(Value::as_array_mut) {
        let before = results.len();
        results.retain(|key| !is_node_default(key));
        let hidden = (before - results.len()) as u64;
        if let Some(total) = answer.get_mut("total") {
            if let Some(n) = total.as_u64() {
                *total = Value::from(n.saturating_sub(hidden));
            }
        }
        return true;
    }
    !is_node_default(answer)
}

/// The keys a node holds (empty when it has no master key or does not answer).
async fn node_keys(state: &AppState, node: &NodeId) -> Option<Vec<Value>> {
    let client = state.client(node).ok()?;
    let response =
        client.send(Method::GET, "/keys?limit=100000", None, NodeAuth::NodeKey).await.ok()?;
    if !response.is_success() {
        return None;
    }
    response.json().get("results").and_then(Value::as_array).cloned()
}

/// Makes sure `node` holds Miroir's default keys; returns whether the node was handled (it
/// answered), so it is not asked again.
async fn ensure_on(state: &AppState, node: &NodeId) -> bool {
    let Some(keys) = node_keys(state, node).await else { return false };
    let present: BTreeSet<&str> =
        keys.iter().filter_map(|k| k.get("uid").and_then(Value::as_str)).collect();
    let Ok(client) = state.client(node) else { return false };
    let mut handled = true;
    for key in keys.iter().filter(|k| is_node_default(k)) {
        let name = key.get("name").and_then(Value::as_str).unwrap_or_default();
        let uid = miroir_uid(name);
        if present.contains(uid.as_str()) {
            continue;
        }
        let body = json!({
            "uid": uid,
            "name": name,
            "description": key.get("description").cloned().unwrap_or(Value::Null),
            "actions": key.get("actions").cloned().unwrap_or_else(|| json!([])),
            "indexes": key.get("indexes").cloned().unwrap_or_else(|| json!(["*"])),
            "expiresAt": key.get("expiresAt").cloned().unwrap_or(Value::Null),
        });
        let bytes = serde_json::to_vec(&body).expect("a JSON value serializes");
        let created = client
            .send(Method::POST, "/keys", Some(NodeBody::json(bytes)), NodeAuth::NodeKey)
            .await;
        match created {
            // 409: another Miroir instance created it first.
            Ok(response) if response.is_success() || response.status == 409 => {}
            Ok(response) => {
                tracing::warn!(%node, status = response.status, "default key not created");
                handled = false;
            }
            Err(error) => {
                tracing::warn!(%node, %error, "default key not created");
                handled = false;
            }
        }
    }
    handled
}

/// Makes sure every node of the topology holds Miroir's default keys (each node is handled once
/// per process: when it first answers).
pub async fn ensure(state: &AppState) {
    let pending: Vec<NodeId> = state
        .topology()
        .nodes()
        .filter(|node| !state.keys().defaults_ensured(node))
        .cloned()
        .collect();
    if pending.is_empty() {
        return;
    }
    let outcomes = join_all(pending.iter().map(|node| ensure_on(state, node))).await;
    for (node, handled) in pending.iter().zip(outcomes) {
        if handled {
            state.keys().mark_defaults_ensured(node);
        }
    }
}

/// After Miroir's default key named `name` was deleted: deletes every node's own default of
/// that name, so [`ensure`] does not create it again.
pub async fn forget(state: &AppState, name: &str) {
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    join_all(nodes.iter().map(|node| async move {
        let Some(keys) = node_keys(state, node).await else { return };
        let Ok(client) = state.client(node) else { return };
        for key in keys.iter().filter(|k| is_node_default(k)) {
            if key.get("name").and_then(Value::as_str) != Some(name) {
                continue;
            }
            let Some(uid) = key.get("uid").and_then(Value::as_str) else { continue };
            let _ =
                client.send(Method::DELETE, &format!("/keys/{uid}"), None, NodeAuth::NodeKey).await;
        }
    }))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miroir_default_uids_are_stable_uuids_per_name() {
        let search = miroir_uid("Default Search API Key");
        assert_eq!(search, miroir_uid("Default Search API Key"));
        assert_ne!(search, miroir_uid("Default Admin API Key"));
        assert!(uuid::Uuid::parse_str(&search).is_ok());
    }

    #[test]
    fn node_defaults_are_hidden_and_miroir_defaults_kept() {
        let name = "Default Search API Key";
        let mut answer = json!({"results": [
            {"name": name, "uid": "0b7e5f3c-1111-4a4a-8888-000000000000"},
            {"name": name, "uid": miroir_uid(name)},
            {"name": "mine", "uid": "0b7e5f3c-2222-4a4a-8888-000000000000"},
        ], "offset": 0, "limit": 20, "total": 3});
        assert!(hide_node_defaults(&mut answer));
        assert_eq!(answer["total"], 2);
        assert_eq!(answer["results"][0]["uid"], miroir_uid(name));
        let mut one = json!({"name": name, "uid": "0b7e5f3c-1111-4a4a-8888-000000000000"});
        assert!(!hide_node_defaults(&mut one));
    }
}
