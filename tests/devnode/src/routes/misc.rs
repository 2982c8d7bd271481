//! `/health`, `/version` and `/stats`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{auth, ok_json};
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
) -> Result<Response, ApiError> {
    let access = auth(&node, &headers, "stats.get", None)?;
    let db = node.db();
    let mut indexes = Map::new();
    let mut size = 0;
    for (uid, index) in db.indexes.iter().filter(|(uid, _)| access.allows_index(uid)) {
        let stats = super::indexes::index_stats(&db, index);
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
