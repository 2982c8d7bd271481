//! `/health`, `/version`, `/stats` and `/experimental-features`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{auth, json_body, ok_json};
use crate::error::ApiError;
use crate::state::Node;
use crate::tasks::format_date;

pub async fn health() -> Response {
    ok_json(json!({ "status": "available" }))
}

pub async fn version(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth(&node, &headers, "version", None)?;
    Ok(ok_json(json!({
        "commitSha": "miroir-devnode",
        "commitDate": "2026-01-01T00:00:00Z",
        "pkgVersion": "1.50.0",
    })))
}

pub async fn stats(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let internal = super::indexes::show_internal_sizes(q.as_deref())?;
    let access = auth(&node, &headers, "stats.get", None)?;
    let db = node.db();
    let mut indexes = Map::new();
    let mut size = 0;
    for (uid, index) in db.indexes.iter().filter(|(uid, _)| access.allows_index(uid)) {
        let mut stats = super::indexes::index_stats(&db, index);
        if let Some(human) = internal {
            super::indexes::with_internal_sizes(&mut stats, human);
        }
        size += stats["rawDocumentDbSize"].as_u64().unwrap_or(0);
        indexes.insert(uid.clone(), stats);
    }
    Ok(ok_json(json!({
        "databaseSize": size,
        "usedDatabaseSize": size,
        "lastUpdate": db.last_update.map(format_date),
        "indexes": Value::Object(indexes),
    })))
}

/// The experimental features of Meilisearch 1.50, all off by default.
pub const EXPERIMENTAL_FEATURES: [&str; 14] = [
    "chatCompletions",
    "compositeEmbedders",
    "containsFilter",
    "disableDocumentsFetchQueue",
    "dynamicSearchRules",
    "editDocumentsByFunction",
    "foreignKeys",
    "getTaskDocumentsRoute",
    "legacySearch",
    "logsRoute",
    "metrics",
    "multimodal",
    "renderRoute",
    "taskQueueCompactionRoute",
];

fn features_json(db: &crate::state::Db) -> Value {
    let features: Map<String, Value> = EXPERIMENTAL_FEATURES
        .iter()
        .map(|name| {
            let on = db.experimental_features.get(*name).copied().unwrap_or(false);
            ((*name).to_owned(), Value::Bool(on))
        })
        .collect();
    Value::Object(features)
}

pub async fn experimental_get(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth(&node, &headers, "experimental.get", None)?;
    Ok(ok_json(features_json(&node.db())))
}

/// `PATCH /experimental-features`: the given features change, the others stay; `null` turns a
/// feature off.
pub async fn experimental_patch(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth(&node, &headers, "experimental.update", None)?;
    let body = json_body(&headers, &body)?;
    let obj = body.as_object().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found `{body}`"),
        )
    })?;
    let mut changes = Vec::new();
    for (name, value) in obj {
        if !EXPERIMENTAL_FEATURES.contains(&name.as_str()) {
            let expected: Vec<String> =
                EXPERIMENTAL_FEATURES.iter().map(|f| format!("`{f}`")).collect();
            return Err(ApiError::new(
                "bad_request",
                format!("Unknown field `{name}`: expected one of {}", expected.join(", ")),
            ));
        }
        let on = match value {
            Value::Bool(on) => *on,
            Value::Null => false,
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!(
                        "Invalid value type at `.{name}`: expected a boolean, but found `{other}`"
                    ),
                ))
            }
        };
        changes.push((name.clone(), on));
    }
    let mut db = node.db();
    db.experimental_features.extend(changes);
    Ok(ok_json(features_json(&db)))
}
