//! `GET /indexes/{uid}/stats` and `GET /stats`, summed over the nodes of one replica group.
//!
//! Stats cannot be filtered by shard, but inside a group every shard lives on exactly RF nodes,
//! so the sum over the group's nodes counts every document RF times: dividing by RF gives what
//! one node holding everything would report.

use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::{scatter_group, NodeRequest};
use miroir_types::{ApiError, ErrorCode, ForwardedError};
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::bookkeeping::is_reserved;
use crate::error::{HttpError, HttpResult};
use crate::search::ClientTransport;
use crate::AppState;

/// `GET /indexes/{uid}/stats`
pub async fn index_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    if state.catalog().get_index(&uid).await?.is_none() {
        return Err(ApiError::index_not_found(&uid).into());
    }
    let path = with_query(&format!("/indexes/{uid}/stats"), query.as_deref());
    let answers = from_group(&state, &caller, Some(&uid), &path).await?;
    Ok(Json(sum_index_stats(&answers, state.replication_factor() as u64)).into_response())
}

/// `GET /stats`
pub async fn global_stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    let answers =
        from_group(&state, &caller, None, &with_query("/stats", query.as_deref())).await?;
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

/// Every node of one group's answer to `GET path` ([`scatter_group`]: the first group, in
/// topology order, whose nodes all answer, trying first the groups with no node down, never one
/// with a node stale for `index`); a client error is forwarded; when no group is left,
/// `miroir_shard_unavailable`.
async fn from_group(
    state: &AppState,
    caller: &Caller,
    index: Option<&str>,
    path: &str,
) -> HttpResult<Vec<Value>> {
    let transport = ClientTransport::new(state, caller.node_auth());
    let request = NodeRequest { method: Method::GET, path: path.to_owned(), body: None };
    let topology = state.topology();
    let gathered =
        scatter_group(&transport, &topology, state.health(), state.stale(), index, &request)
            .await
            .map_err(|refused| {
                let response = refused.response;
                HttpError::from(ForwardedError::new(response.status, response.body.to_vec()))
            })?;
    for failure in &gathered.failures {
        let (node, verdict) = (&failure.node, failure.outcome);
        let error = failure.error.as_ref().map(ToString::to_string);
        tracing::warn!(%node, ?verdict, ?error, "a node failed a stats read");
    }
    match gathered.answers {
        Some(answers) => Ok(answers.into_iter().map(|(_, response)| response.json()).collect()),
        None => Err(HttpError::api(
            ErrorCode::MiroirShardUnavailable,
            match gathered.failures.last() {
                Some(failure) => {
                    format!("No replica group could answer: node `{}` failed.", failure.node)
                }
                None => "No replica group could answer: every group has a stale node.".to_owned(),
            },
        )),
    }
}

/// `path` with the client's query string (e.g. `showInternalDatabaseSizes`), which the nodes
/// check and apply.
fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

/// A size as a node writes it: a number of bytes, or a human size (`"72 KiB"`).
fn bytes_of(size: &Value) -> Option<u64> {
    if let Some(n) = size.as_u64() {
        return Some(n);
    }
    let (number, unit) = size.as_str()?.split_once(' ')?;
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * scale).round() as u64)
}

/// `bytes` in the form the nodes used: a number, or a human size.
fn size_like(bytes: u64, human: bool) -> Value {
    if !human {
        return Value::from(bytes);
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        Value::from(format!("{} {}", value.round(), units[unit]))
    } else {
        Value::from(format!("{value:.2} {}", units[unit]))
    }
}

/// `internalDatabaseSizes` summed over the nodes of a group (each counted once, as documents).
fn sum_internal_sizes(per_node: &[Value], rf: u64) -> Option<Value> {
    let mut sums: Map<String, Value> = Map::new();
    let mut human = false;
    let mut any = false;
    for stats in per_node {
        for (name, size) in stats["internalDatabaseSizes"].as_object().into_iter().flatten() {
            any = true;
            human |= size.is_string();
            let total = sums.get(name).and_then(Value::as_u64).unwrap_or(0);
            sums.insert(name.clone(), Value::from(total + bytes_of(size).unwrap_or(0)));
        }
    }
    if !any {
        return None;
    }
    for size in sums.values_mut() {
        *size = size_like(size.as_u64().unwrap_or(0) / rf, human);
    }
    Some(Value::Object(sums))
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
    let internal = sum_internal_sizes(per_node, rf);
    let mut stats = serde_json::json!({
        "numberOfDocuments": documents,
        "rawDocumentDbSize": raw,
        "avgDocumentSize": raw.checked_div(documents).unwrap_or(0),
        "isIndexing": per_node.iter().any(|s| s["isIndexing"] == true),
        "numberOfEmbeddings": sum("numberOfEmbeddings"),
        "numberOfEmbeddedDocuments": sum("numberOfEmbeddedDocuments"),
        "fieldDistribution": Value::Object(sorted.into_iter().collect()),
    });
    if let Some(internal) = internal {
        stats["internalDatabaseSizes"] = internal;
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn internal_sizes_are_summed_in_the_nodes_form() {
        let a = json!({"internalDatabaseSizes": {"main": 4096, "documents": 8192}});
        let b = json!({"internalDatabaseSizes": {"main": 4096, "documents": 4096}});
        assert_eq!(sum_internal_sizes(&[a, b], 1), Some(json!({"main": 8192, "documents": 12288})));
        let a = json!({"internalDatabaseSizes": {"main": "72 KiB"}});
        let b = json!({"internalDatabaseSizes": {"main": "168 KiB"}});
        assert_eq!(sum_internal_sizes(&[a, b], 1), Some(json!({"main": "240 KiB"})));
        assert_eq!(sum_internal_sizes(&[json!({})], 1), None);
    }

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
