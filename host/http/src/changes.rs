//! `GET /_miroir/changes?index=&since=&limit=&timeout=` (admin key): the change feed of one
//! index by long-poll. Answers at once when events follow `since`, otherwise waits for one up to
//! `timeout` and answers what came (possibly nothing). The answer's `cursor` is what to send as
//! the next `since`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::Json;
use miroir_config::HumanDuration;
use miroir_types::ErrorCode;
use serde_json::{json, Value};

use crate::{AppState, HttpError, HttpResult};

/// Events per answer when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
const MAX_LIMIT: usize = 10_000;
/// The wait when `timeout` is not given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

fn invalid(message: String) -> HttpError {
    HttpError::api(ErrorCode::MiroirInvalidQuery, message)
}

/// The handler.
pub async fn changes(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> HttpResult<Json<Value>> {
    let Some(feed) = state.change_feed() else {
        return Err(HttpError::api(
            ErrorCode::MiroirFeatureDisabled,
            "change capture is off: set `cdc.enabled: true` to record changes",
        ));
    };
    if !state.config().cdc.sinks.queue.enabled {
        return Err(HttpError::api(
            ErrorCode::MiroirFeatureDisabled,
            "the long-poll queue is off: set `cdc.sinks.queue.enabled: true` to read changes here",
        ));
    }
    let index = match query.get("index").map(String::as_str) {
        Some(index) if !index.is_empty() => index,
        _ => {
            return Err(invalid("`index` is required: `?index=<index uid>&since=<cursor>`".into()))
        }
    };
    let since = match query.get("since") {
        None => 0,
        Some(since) => since.parse::<u64>().map_err(|_| {
            invalid(format!("`since` must be a cursor (a non-negative integer), not `{since}`"))
        })?,
    };
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(limit) => match limit.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => {
                return Err(invalid(format!(
                    "`limit` must be an integer from 1 to {MAX_LIMIT}, not `{limit}`"
                )))
            }
        },
    };
    let timeout = match query.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(timeout) => {
            // `5s`, `500ms`, or a number of seconds.
            let parsed = timeout
                .parse::<u64>()
                .map(Duration::from_secs)
                .or_else(|_| HumanDuration::from_str(timeout).map(Duration::from));
            match parsed {
                Ok(timeout) if timeout <= MAX_TIMEOUT => timeout,
                _ => {
                    return Err(invalid(format!(
                        "`timeout` must be a duration of at most 300s (`30s`, `500ms`, `10`), not \
                         `{timeout}`"
                    )))
                }
            }
        }
    };
    let page = feed.changes(index, since, limit, timeout).await?;
    Ok(Json(json!({
        "index": index,
        "events": page.events,
        "cursor": page.cursor,
        "oldest": page.oldest,
        "head": page.head,
    })))
}
