//! `GET /_miroir/shadow/diff?index=&differs=&limit=` and `GET /_miroir/shadow/summary` (admin
//! key).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use miroir_types::ErrorCode;
use serde_json::{json, Value};

use crate::{AppState, HttpError, HttpResult};

/// Comparisons per answer when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

fn tee(state: &AppState) -> HttpResult<&std::sync::Arc<super::ShadowTee>> {
    state.shadow().ok_or_else(|| {
        HttpError::api(
            ErrorCode::MiroirFeatureDisabled,
            "shadowing is off: set `shadow.enabled: true` and `shadow.targets` to compare reads",
        )
    })
}

/// The ring buffer, newest first: `index` keeps one index's reads, `differs=true` only the
/// comparisons whose answers differed, `limit` (default 100) caps the count.
pub(crate) async fn diff_route(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Json<Value>> {
    let tee = tee(&state)?;
    let invalid = |message: String| HttpError::api(ErrorCode::MiroirInvalidQuery, message);
    let differs = match query.get("differs").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(invalid(format!("`differs` must be true or false, not `{other}`")))
        }
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(limit) => limit.parse::<usize>().map_err(|_| {
            invalid(format!("`limit` must be a non-negative integer, not `{limit}`"))
        })?,
    };
    let index = query.get("index").map(String::as_str).filter(|s| !s.is_empty());
    Ok(Json(json!({ "results": tee.diffs(index, differs, limit) })))
}

/// The aggregate per target.
pub(crate) async fn summary_route(State(state): State<AppState>) -> HttpResult<Json<Value>> {
    Ok(Json(tee(&state)?.summary()))
}
