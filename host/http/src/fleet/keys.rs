//! A node joining the fleet gets the API keys created through Miroir before it serves a read:
//! clients' keys are forwarded to the nodes, so a node without them would refuse every request
//! made with one. A key is re-created with the same `uid`, from which every node derives the
//! same key value (the nodes share their master key).

use axum::http::Method;
use miroir_cluster::{NodeAuth, NodeBody, NodeClient};
use serde_json::{json, Value};

use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// Creates on `target` every key `source` holds that `target` lacks (node defaults excepted:
/// each node has its own; Miroir's default keys are ensured by [`crate::default_keys`]).
/// Returns how many keys were created.
pub async fn copy_keys(source: &NodeClient, target: &NodeClient) -> HttpResult<usize> {
    let Some(wanted) = keys_of(source).await? else { return Ok(0) };
    let present: Vec<String> = keys_of(target)
        .await?
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k["uid"].as_str().map(str::to_owned))
        .collect();
    let mut created = 0;
    for key in wanted.iter().filter(|k| !crate::default_keys::is_node_default(k)) {
        let Some(uid) = key["uid"].as_str() else { continue };
        if present.iter().any(|p| p == uid) {
            continue;
        }
        let body = json!({
            "uid": uid,
            "name": key["name"],
            "description": key["description"],
            "actions": key["actions"],
            "indexes": key["indexes"],
            "expiresAt": key["expiresAt"],
        });
        let bytes = serde_json::to_vec(&body).map_err(|e| HttpError::Internal(e.to_string()))?;
        let answer = target
            .send(Method::POST, "/keys", Some(NodeBody::json(bytes)), NodeAuth::NodeKey)
            .await?;
        if !answer.is_success() {
            return Err(HttpError::Internal(format!(
                "node {} refused API key {uid}: {}",
                target.id(),
                String::from_utf8_lossy(&answer.body)
            )));
        }
        created += 1;
    }
    Ok(created)
}

/// Every key of a node; `None` when the node has no master key (no keys at all).
async fn keys_of(node: &NodeClient) -> HttpResult<Option<Vec<Value>>> {
    let answer = node.send(Method::GET, "/keys?limit=100000", None, NodeAuth::NodeKey).await?;
    if answer.status == 401 || answer.status == 403 {
        return Ok(None);
    }
    if !answer.is_success() {
        return Err(HttpError::Internal(format!(
            "node {} answered {} to GET /keys",
            node.id(),
            answer.status
        )));
    }
    Ok(Some(answer.json()["results"].as_array().cloned().unwrap_or_default()))
}

/// Gives each of `receivers` the keys of another healthy node holding data (active or
/// draining), and Miroir's default keys: a node joining the fleet, or one that came back empty.
pub async fn copy_keys_to(state: &AppState, receivers: &[miroir_types::NodeId]) -> HttpResult<()> {
    let view = state.fleet();
    for receiver in receivers {
        let source = view
            .fleet()
            .nodes
            .iter()
            .filter(|n| &n.id != receiver && view.fleet().is_usable_source(&n.id))
            .filter(|n| state.health().is_healthy(&n.id))
            .find_map(|n| state.client(&n.id).ok());
        let Some(source) = source else {
            return Err(HttpError::Internal(format!(
                "no healthy node to copy API keys to {receiver} from"
            )));
        };
        let created = copy_keys(&source, &state.client(receiver)?).await?;
        if created > 0 {
            tracing::info!(node = %receiver, created, "API keys copied");
        }
    }
    crate::default_keys::ensure(state).await;
    Ok(())
}
