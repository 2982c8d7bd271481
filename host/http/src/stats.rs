//! `GET /indexes/{uid}/stats` and `GET /stats`, summed over the nodes of one replica group.
//!
//! Stats cannot be filtered by shard, but inside a group every shard lives on exactly RF nodes,
//! so the sum over the group's nodes counts every document RF times: dividing by RF gives what
//! one node holding everything would report.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_types::{ApiError, ForwardedError};
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::bookkeeping::is_reserved;
use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// `GET /indexes/{uid}/stats`
pub async fn index_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    if state.catalog().get_index(&uid).await?.is_none() {
        return Err(ApiError::index_not_found(&uid).into());
    }
    let answers = from_group(&state, &caller, &format!("/indexes/{uid}/stats")).await?;
    Ok(Json(sum_index_stats(&answers, state.replication_factor() as u64)).into_response())
}

/// `GET /stats`
pub async fn global_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> HttpResult<Response> {
    let answers = from_group(&state, &caller, "/stats").await?;
    let rf = state.replication_factor() as u64;
    let mut indexes: Map<String, Value> = Map::new();
    let names: std::collections::BTreeSet<String> = answers
        .iter()
        .filter_map(|a| a["indexes"].as_object())
        .flat_map(|m| m.keys().cloned())
        .filter(|name| !crate::node_catalog::is_reserved_index(name))
        .collect();
    for name in names {
        let per_node: Vec<Value> =
            answers.iter().filter_map(|a| a["indexes"].get(&name).cloned()).collect();
        indexes.insert(name, sum_index_stats(&per_node, rf));
    }
    let size: u64 = answers.iter().filter_map(|a| a["databaseSize"].as_u64()).sum::<u64>() / rf;
    let used: u64 = answers.iter().filter_map(|a| a["usedDatabaseSize"].as_u64()).sum::<u64>() / rf;
    let last_update =
        answers.iter().filter_map(|a| a["lastUpdate"].as_str()).max().map(str::to_owned);
    Ok(Json(serde_json::json!({
        "databaseSize": size,
        "usedDatabaseSize": used,
        "lastUpdate": last_update,
        "indexes": indexes,
    }))
    .into_response())
}

/// Every node of the first group's answer to `GET path`.
async fn from_group(state: &AppState, caller: &Caller, path: &str) -> HttpResult<Vec<Value>> {
    let group =
        state.topology().groups().first().ok_or_else(|| HttpError::Internal("no group".into()))?;
    let calls = group.nodes.iter().map(|node| async move {
        let client = state.clients().get(node)?;
        let response = client.send(Method::GET, path, None, caller.node_auth()).await?;
        if !response.is_success() {
            return Err(ForwardedError::new(response.status, response.body.to_vec()).into());
        }
        Ok::<_, HttpError>(response.json())
    });
    futures_util::future::join_all(calls).await.into_iter().collect()
}

/// One index's stats from each node of a group, as one node holding everything reports them.
fn sum_index_stats(per_node: &[Value], rf: u64) -> Value {
    let rf = rf.max(1);
    let sum = |key: &str| per_node.iter().filter_map(|s| s[key].as_u64()).sum::<u64>() / rf;
    let mut fields: Map<String, Value> = Map::new();
    for stats in per_node {
        for (field, count) in stats["fieldDistribution"].as_object().into_iter().flatten() {
            if is_reserved(field) {
                continue;
            }
            let total = fields.get(field).and_then(Value::as_u64).unwrap_or(0);
            fields.insert(field.clone(), Value::from(total + count.as_u64().unwrap_or(0)));
        }
    }
    for count in fields.values_mut() {
        *count = Value::from(count.as_u64().unwrap_or(0) / rf);
    }
    let mut sorted: Vec<(String, Value)> = fields.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let documents = sum("numberOfDocuments");
    let raw = sum("rawDocumentDbSize");
    serde_json::json!({
        "numberOfDocuments": documents,
        "rawDocumentDbSize": raw,
        "avgDocumentSize": raw.checked_div(documents).unwrap_or(0),
        "isIndexing": per_node.iter().any(|s| s["isIndexing"] == true),
        "numberOfEmbeddings": sum("numberOfEmbeddings"),
        "numberOfEmbeddedDocuments": sum("numberOfEmbeddedDocuments"),
        "fieldDistribution": Value::Object(sorted.into_iter().collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replicas_are_counted_once_and_bookkeeping_is_hidden() {
        let a = json!({"numberOfDocuments": 6, "rawDocumentDbSize": 600, "isIndexing": false,
                       "fieldDistribution": {"id": 6, "title": 4, "_miroir_shard": 6}});
        let b = json!({"numberOfDocuments": 4, "rawDocumentDbSize": 400, "isIndexing": true,
                       "fieldDistribution": {"id": 4, "title": 2, "_miroir_shard": 4}});
        let out = sum_index_stats(&[a, b], 2);
        assert_eq!(out["numberOfDocuments"], 5);
        assert_eq!(out["fieldDistribution"], json!({"id": 5, "title": 3}));
        assert_eq!(out["isIndexing"], true);
        assert_eq!(out["avgDocumentSize"], 100);
    }
}
