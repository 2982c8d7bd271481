//! Index routes: create, get, list, update, delete, swap and per-index stats.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::{
    accepted, auth, check_uid, invalid_index_uid, is_valid_index_uid, json_body, ok_json,
    parse_usize, query_pairs,
};
use crate::error::ApiError;
use crate::index::Index;
use crate::state::{Db, Node};
use crate::tasks::{format_date, TaskKind, TaskStatus};

/// The index object Meilisearch answers with.
pub fn index_json(index: &Index) -> Value {
    json!({
        "uid": index.uid,
        "createdAt": format_date(index.created_at),
        "updatedAt": format_date(index.updated_at),
        "primaryKey": index.primary_key,
    })
}

/// `GET /indexes/{uid}/stats` for one index.
pub fn index_stats(db: &Db, index: &Index) -> Value {
    let raw: usize =
        index.documents.values().map(|d| Value::Object(d.clone()).to_string().len()).sum();
    let count = index.documents.len();
    let is_indexing = db.tasks.values().any(|t| {
        t.index_uid.as_deref() == Some(index.uid.as_str())
            && matches!(t.status, TaskStatus::Enqueued | TaskStatus::Processing)
    });
    json!({
        "numberOfDocuments": count,
        "rawDocumentDbSize": raw,
        "avgDocumentSize": raw.checked_div(count).unwrap_or(0),
        "isIndexing": is_indexing,
        "numberOfEmbeddings": 0,
        "numberOfEmbeddedDocuments": 0,
        "fieldDistribution": index.field_distribution(),
    })
}

pub async fn list(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "indexes.get", None)?;
    let (mut offset, mut limit) = (0, 20);
    for (key, value) in query_pairs(q.as_deref()) {
        match key.as_str() {
            "offset" => offset = parse_usize("offset", &value, "invalid_index_offset")?,
            "limit" => limit = parse_usize("limit", &value, "invalid_index_limit")?,
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown parameter `{other}`: expected one of `offset`, `limit`"),
                ))
            }
        }
    }
    let db = node.db();
    let visible: Vec<&Index> =
        db.indexes.values().filter(|i| access.allows_index(&i.uid)).collect();
    let results: Vec<Value> =
        visible.iter().skip(offset).take(limit).map(|i| index_json(i)).collect();
    Ok(ok_json(
        json!({ "results": results, "offset": offset, "limit": limit, "total": visible.len() }),
    ))
}

pub async fn create(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, &body)?;
    let obj = body.as_object().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found {body}"),
        )
    })?;
    if let Some(field) = obj.keys().find(|k| !["uid", "primaryKey"].contains(&k.as_str())) {
        return Err(ApiError::new(
            "bad_request",
            format!("Unknown field `{field}`: expected one of `uid`, `primaryKey`"),
        ));
    }
    let uid = match obj.get("uid") {
        None => return Err(ApiError::new("missing_index_uid", "Missing field `uid`")),
        Some(Value::String(s)) if is_valid_index_uid(s) => s.clone(),
        Some(Value::String(s)) => {
            let mut err = invalid_index_uid(s);
            err.message = format!("Invalid value at `.uid`: {}", err.message);
            return Err(err);
        }
        Some(other) => {
            return Err(ApiError::new(
                "invalid_index_uid",
                format!("Invalid value type at `.uid`: expected a string, but found {other}"),
            ))
        }
    };
    let primary_key = primary_key_field(obj.get("primaryKey"))?;
    auth(&node, &headers, "indexes.create", Some(&uid))?;
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::IndexCreation { primary_key })))
}

fn primary_key_field(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::new(
            "invalid_index_primary_key",
            format!("Invalid value type at `.primaryKey`: expected a string, but found {other}"),
        )),
    }
}

pub async fn get(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "indexes.get", Some(&uid))?;
    let db = node.db();
    let index = db.index(&uid)?;
    Ok(ok_json(index_json(index)))
}

pub async fn update(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    let body = json_body(&headers, &body)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::new("bad_request", "Invalid value type: expected an object"))?;
    if let Some(field) = obj.keys().find(|k| !matches!(k.as_str(), "primaryKey" | "uid")) {
        return Err(ApiError::new(
            "bad_request",
            format!("Unknown field `{field}`: expected one of `primaryKey`, `uid`"),
        ));
    }
    let primary_key = primary_key_field(obj.get("primaryKey"))?;
    let new_uid = match obj.get("uid") {
        None | Some(Value::Null) => None,
        Some(Value::String(new_uid)) if is_valid_index_uid(new_uid) => Some(new_uid.clone()),
        Some(Value::String(new_uid)) => {
            return Err(ApiError::new("invalid_index_uid", format!("Invalid value at `.uid`: `{new_uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes.")))
        }
        Some(other) => {
            return Err(ApiError::new(
                "invalid_index_uid",
                format!("Invalid value type at `.uid`: expected a string, but found `{other}`"),
            ))
        }
    };
    auth(&node, &headers, "indexes.update", Some(&uid))?;
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::IndexUpdate { primary_key, new_uid })))
}

pub async fn delete(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "indexes.delete", Some(&uid))?;
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::IndexDeletion)))
}

pub async fn stats(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    let internal = show_internal_sizes(q.as_deref())?;
    auth(&node, &headers, "stats.get", Some(&uid))?;
    let db = node.db();
    let index = db.index(&uid)?;
    let mut stats = index_stats(&db, index);
    if let Some(human) = internal {
        with_internal_sizes(&mut stats, human);
    }
    Ok(ok_json(stats))
}

/// The `showInternalDatabaseSizes` and `sizeFormat` (`raw` or `human`) parameters of the stats
/// routes: `Some(human)` when the sizes are shown.
pub fn show_internal_sizes(query: Option<&str>) -> Result<Option<bool>, ApiError> {
    let (mut show, mut human) = (false, false);
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "showInternalDatabaseSizes" => {
                show = value.parse().map_err(|_| {
                    ApiError::new("bad_request", format!("Invalid value in parameter `showInternalDatabaseSizes`: could not parse `{value}` as a boolean"))
                })?
            }
            "sizeFormat" => {
                human = match value.as_str() {
                    "raw" => false,
                    "human" => true,
                    _ => return Err(ApiError::new("bad_request", format!("Unknown value `{value}` for parameter `sizeFormat`: expected one of `raw`, `human`"))),
                }
            }
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown parameter `{other}`: expected one of `showInternalDatabaseSizes`, `sizeFormat`"),
                ))
            }
        }
    }
    Ok(show.then_some(human))
}

/// A size in bytes as a human size (`4 KiB`, `1.5 MiB`).
fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {}", units[unit])
}

/// Adds `internalDatabaseSizes` to one index's stats: held in memory, the documents' size and
/// one page (4 KiB) for each other database; as human sizes with `human`.
pub fn with_internal_sizes(stats: &mut Value, human: bool) {
    let documents = stats["rawDocumentDbSize"].as_u64().unwrap_or(0).max(4096);
    let size = |bytes: u64| if human { json!(human_size(bytes)) } else { json!(bytes) };
    stats["internalDatabaseSizes"] = json!({
        "documents": size(documents),
        "externalDocumentsIds": size(4096),
        "main": size(4096),
        "wordDocids": size(4096),
    });
}

pub async fn swap(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&headers, &body)?;
    let swaps = body.as_array().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an array, but found {body}"),
        )
    })?;
    let mut seen = Vec::new();
    for (i, swap) in swaps.iter().enumerate() {
        let list = swap.get("indexes").and_then(Value::as_array).ok_or_else(|| {
            ApiError::new("missing_swap_indexes", format!("Missing field `indexes` inside `[{i}]`"))
        })?;
        let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        if names.len() != 2 || list.len() != 2 {
            return Err(ApiError::new(
                "invalid_swap_indexes",
                format!(
                    "Invalid value at `[{i}].indexes`: two indexes must be given, got {}.",
                    list.len()
                ),
            ));
        }
        for name in names {
            check_uid(name)?;
            if seen.contains(&name) {
                return Err(ApiError::new("invalid_swap_duplicate_index_found", format!("Indexes must be declared only once during a swap. `{name}` was specified several times.")));
            }
            seen.push(name);
        }
    }
    for uid in &seen {
        auth(&node, &headers, "indexes.swap", Some(uid))?;
    }
    Ok(accepted(&node.enqueue(None, TaskKind::IndexSwap { swaps: swaps.clone() })))
}
