//! `/webhooks`: Miroir's own webhooks. They are kept in the task store (a reserved key-value
//! namespace, so every Miroir instance sees the same ones) and fire when a *Miroir* task
//! finishes: a `POST` of that task, as `GET /tasks/{uid}` shows it, one JSON line
//! (`application/x-ndjson`), with the webhook's headers. The nodes' own tasks never fire them.
//!
//! Delivery is at least once and best effort: a target that does not answer is not retried, and
//! two instances finishing the same task at the same moment may both deliver it.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use miroir_store::TaskRecord;
use miroir_types::ErrorCode;
use serde_json::{json, Map, Value};

use crate::body::{json_body, RawBody};
use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// The reserved key-value namespace of webhooks (key: the webhook's uuid).
const NAMESPACE: &str = "miroir.webhooks";

/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the watcher brings unfinished tasks up to date while webhooks exist.
pub const WATCH_EVERY: Duration = Duration::from_millis(250);

/// A stored webhook: what the client configured, and when (for listing order).
fn stored(url: &str, headers: &Map<String, Value>, created: i128) -> Value {
    json!({"url": url, "headers": headers, "created": created.to_string()})
}

/// A header value as Meilisearch shows it: authorization values are hidden.
fn redacted(name: &str, value: &Value) -> Value {
    let Some(text) = value.as_str() else { return value.clone() };
    if !name.eq_ignore_ascii_case("authorization") {
        return value.clone();
    }
    match text.split_once(' ') {
        Some((scheme, _)) => Value::from(format!("{scheme} XXX...")),
        None => Value::from("XXX..."),
    }
}

fn view(uuid: &str, webhook: &Value) -> Value {
    let headers: Map<String, Value> = webhook["headers"]
        .as_object()
        .map(|h| h.iter().map(|(k, v)| (k.clone(), redacted(k, v))).collect())
        .unwrap_or_default();
    json!({"uuid": uuid, "isEditable": true, "url": webhook["url"], "headers": headers})
}

async fn load(state: &AppState, uuid: &str) -> HttpResult<Option<Value>> {
    let bytes = state.store().plugin_get(NAMESPACE, uuid).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
}

async fn save(state: &AppState, uuid: &str, webhook: &Value) -> HttpResult<()> {
    let bytes = serde_json::to_vec(webhook).map_err(|e| HttpError::Internal(e.to_string()))?;
    state.store().plugin_put(NAMESPACE, uuid, &bytes).await?;
    Ok(())
}

/// Every webhook, oldest first.
async fn all(state: &AppState) -> HttpResult<Vec<(String, Value)>> {
    let mut hooks = Vec::new();
    for uuid in state.store().plugin_list_keys(NAMESPACE, "").await? {
        if let Some(hook) = load(state, &uuid).await? {
            hooks.push((uuid, hook));
        }
    }
    hooks.sort_by_key(|(_, h)| h["created"].as_str().and_then(|c| c.parse::<i128>().ok()));
    Ok(hooks)
}

fn parse_uuid(uuid: &str) -> HttpResult<String> {
    uuid::Uuid::parse_str(uuid).map(|u| u.to_string()).map_err(|_| {
        HttpError::api(
            ErrorCode::InvalidWebhookUuid,
            format!("Invalid value in parameter `uuid`: `{uuid}` is not a valid uuid."),
        )
    })
}

fn not_found(uuid: &str) -> HttpError {
    HttpError::api(ErrorCode::WebhookNotFound, format!("Webhook `{uuid}` not found."))
}

fn check_url(value: &Value) -> HttpResult<String> {
    let url = value.as_str().ok_or_else(|| {
        HttpError::api(
            ErrorCode::InvalidWebhookUrl,
            format!("Invalid value type at `.url`: expected a string, but found `{value}`"),
        )
    })?;
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(url.to_owned()),
        _ => Err(HttpError::api(
            ErrorCode::InvalidWebhookUrl,
            format!("Invalid value at `.url`: `{url}` is not a valid URL."),
        )),
    }
}

/// Applies `headers` of a request (a `null` value removes that header) to `current`.
fn apply_headers(current: &mut Map<String, Value>, headers: &Value) -> HttpResult<()> {
    let invalid = |found: &Value| {
        HttpError::api(
            ErrorCode::InvalidWebhookHeaders,
            format!("Invalid value type at `.headers`: expected an object of strings, but found `{found}`"),
        )
    };
    match headers {
        Value::Null => current.clear(),
        Value::Object(map) => {
            for (name, value) in map {
                match value {
                    Value::Null => {
                        current.remove(name);
                    }
                    Value::String(_) => {
                        current.insert(name.clone(), value.clone());
                    }
                    other => return Err(invalid(other)),
                }
            }
        }
        other => return Err(invalid(other)),
    }
    Ok(())
}

fn fields(body: &Value) -> HttpResult<&Map<String, Value>> {
    let obj = body.as_object().ok_or_else(|| {
        HttpError::api(
            ErrorCode::BadRequest,
            format!("Invalid value type: expected an object, but found `{body}`"),
        )
    })?;
    if let Some(unknown) = obj.keys().find(|k| !matches!(k.as_str(), "url" | "headers")) {
        return Err(HttpError::api(
            ErrorCode::BadRequest,
            format!("Unknown field `{unknown}`: expected one of `url`, `headers`"),
        ));
    }
    Ok(obj)
}

/// `GET /webhooks`.
pub async fn list_webhooks(State(state): State<AppState>) -> HttpResult<Response> {
    let results: Vec<Value> = all(&state).await?.iter().map(|(u, h)| view(u, h)).collect();
    Ok(Json(json!({ "results": results })).into_response())
}

/// `POST /webhooks`.
pub async fn create_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let body = json_body(&headers, &body)?;
    let obj = fields(&body)?;
    let url = match obj.get("url") {
        None | Some(Value::Null) => {
            return Err(HttpError::api(
                ErrorCode::InvalidWebhookUrl,
                "The URL for the webhook must be set.",
            ))
        }
        Some(url) => check_url(url)?,
    };
    let mut hook_headers = Map::new();
    if let Some(h) = obj.get("headers") {
        apply_headers(&mut hook_headers, h)?;
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let created = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let hook = stored(&url, &hook_headers, created);
    save(&state, &uuid, &hook).await?;
    Ok((StatusCode::CREATED, Json(view(&uuid, &hook))).into_response())
}

/// `GET /webhooks/{uuid}`.
pub async fn get_webhook(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> HttpResult<Response> {
    let uuid = parse_uuid(&uuid)?;
    let hook = load(&state, &uuid).await?.ok_or_else(|| not_found(&uuid))?;
    Ok(Json(view(&uuid, &hook)).into_response())
}

/// `PATCH /webhooks/{uuid}`: `url` replaced, `headers` merged (`null` removes).
pub async fn update_webhook(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    let uuid = parse_uuid(&uuid)?;
    let body = json_body(&headers, &body)?;
    let obj = fields(&body)?;
    let mut hook = load(&state, &uuid).await?.ok_or_else(|| not_found(&uuid))?;
    if let Some(url) = obj.get("url") {
        hook["url"] = Value::from(check_url(url)?);
    }
    if let Some(h) = obj.get("headers") {
        let mut current = hook["headers"].as_object().cloned().unwrap_or_default();
        apply_headers(&mut current, h)?;
        hook["headers"] = Value::Object(current);
    }
    save(&state, &uuid, &hook).await?;
    Ok(Json(view(&uuid, &hook)).into_response())
}

/// `DELETE /webhooks/{uuid}`.
pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> HttpResult<Response> {
    let uuid = parse_uuid(&uuid)?;
    if !state.store().plugin_delete(NAMESPACE, &uuid).await? {
        return Err(not_found(&uuid));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Called when Miroir task `record` has just finished: delivers it to every webhook, in the
/// background.
pub fn task_finished(state: &AppState, record: &TaskRecord) {
    let state = state.clone();
    let record = record.clone();
    tokio::spawn(async move {
        let hooks = match all(&state).await {
            Ok(hooks) if !hooks.is_empty() => hooks,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, "webhooks not read");
                return;
            }
        };
        let task = match crate::tasks::routes::rendered(&state, &record).await {
            Ok(task) => task,
            Err(error) => {
                tracing::warn!(%error, task = record.uid, "finished task not rendered");
                return;
            }
        };
        let mut line = task.to_string();
        line.push('\n');
        let client = reqwest::Client::new();
        for (uuid, hook) in hooks {
            let Some(url) = hook["url"].as_str() else { continue };
            let mut request = client
                .post(url)
                .timeout(DELIVERY_TIMEOUT)
                .header("content-type", "application/x-ndjson")
                .body(line.clone());
            for (name, value) in hook["headers"].as_object().into_iter().flatten() {
                if let Some(value) = value.as_str() {
                    request = request.header(name, value);
                }
            }
            if let Err(error) = request.send().await {
                tracing::warn!(webhook = %uuid, %error, task = record.uid, "webhook not delivered");
            }
        }
    });
}

/// Brings unfinished tasks up to date every [`WATCH_EVERY`] while webhooks exist, so a task's
/// webhooks fire when it finishes even if no client asks about it.
pub fn spawn_watcher(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let any = state.store().plugin_list_keys(NAMESPACE, "").await;
            if any.is_ok_and(|keys| !keys.is_empty()) {
                if let Err(error) = crate::tasks::routes::refresh_unfinished(&state).await {
                    tracing::debug!(%error, "unfinished tasks not refreshed");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_values_are_hidden() {
        assert_eq!(redacted("authorization", &json!("Bearer x")), json!("Bearer XXX..."));
        assert_eq!(redacted("Authorization", &json!("secret")), json!("XXX..."));
        assert_eq!(redacted("referer", &json!("https://a")), json!("https://a"));
    }

    #[test]
    fn headers_merge_and_null_removes() {
        let mut current = Map::new();
        apply_headers(&mut current, &json!({"a": "1", "b": "2"})).expect("valid");
        apply_headers(&mut current, &json!({"a": null, "c": "3"})).expect("valid");
        assert_eq!(Value::Object(current.clone()), json!({"b": "2", "c": "3"}));
        assert!(apply_headers(&mut current, &json!({"a": 1})).is_err());
        apply_headers(&mut current, &Value::Null).expect("valid");
        assert!(current.is_empty());
    }
}
