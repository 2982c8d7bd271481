//! Browsing documents (`GET .../documents`, `POST .../documents/fetch`): one node per shard of
//! one group, totals summed, pages concatenated then cut to the client's offset and limit.
//!
//! Not yet the final merge: a single node returns documents in its internal order, which no
//! other server can reproduce, so the page order here is node by node.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::future::join_all;
use miroir_cluster::{CoveringSet, NodeBody};
use miroir_types::ForwardedError;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::catalog::{check_uid, existing};
use crate::documents::strip_document;
use crate::error::{HttpError, HttpResult};
use crate::AppState;
use axum::http::Method;

async fn scatter(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    offset: usize,
    limit: usize,
    request: impl Fn(usize) -> (Method, String, Option<NodeBody>),
) -> HttpResult<Response> {
    let meta = existing(state, uid).await?;
    let assignment = state.assignment(meta.shard_count);
    let group = state
        .topology()
        .groups()
        .first()
        .map(|g| g.id.clone())
        .ok_or_else(|| HttpError::Internal("no replica group".into()))?;
    let covering = CoveringSet::build(&assignment, &group, 0, |_| true);
    let calls = covering.nodes.keys().map(|node| {
        let (method, path, body) = request(offset + limit);
        async move {
            let client = state.clients().get(node)?;
            Ok::<_, HttpError>(client.send(method, &path, body, caller.node_auth()).await?)
        }
    });
    let mut results = Vec::new();
    let mut total = 0u64;
    for answer in join_all(calls).await {
        let answer = answer?;
        if !answer.is_success() {
            return Err(ForwardedError::new(answer.status, answer.body.to_vec()).into());
        }
        let json = answer.json();
        total += json.get("total").and_then(Value::as_u64).unwrap_or(0);
        if let Some(Value::Array(items)) = json.get("results") {
            results.extend(items.iter().cloned());
        }
    }
    let mut page: Vec<Value> = results.into_iter().skip(offset).take(limit).collect();
    page.iter_mut().for_each(strip_document);
    Ok(Json(json!({ "results": page, "offset": offset, "limit": limit, "total": total }))
        .into_response())
}

/// `GET /indexes/{uid}/documents`.
pub async fn browse_get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> HttpResult<Response> {
    check_uid(&uid)?;
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let number = |name: &str, default: usize| {
        params.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.parse().ok()).unwrap_or(default)
    };
    let (offset, limit) = (number("offset", 0), number("limit", 20));
    let rest: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "offset" && k != "limit").collect();
    scatter(&state, &caller, &uid, offset, limit, |reach| {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &rest {
            serializer.append_pair(k, v);
        }
        serializer.append_pair("offset", "0");
        serializer.append_pair("limit", &reach.to_string());
        (Method::GET, format!("/indexes/{uid}/documents?{}", serializer.finish()), None)
    })
    .await
}

/// `POST /indexes/{uid}/documents/fetch`.
pub async fn browse_post(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    check_uid(&uid)?;
    let request = json_body(&headers, &body)?;
    let offset = request.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let limit = request.get("limit").and_then(Value::as_u64).unwrap_or(20) as usize;
    scatter(&state, &caller, &uid, offset, limit, |reach| {
        let mut node_request = request.clone();
        node_request["offset"] = json!(0);
        node_request["limit"] = json!(reach);
        let bytes = serde_json::to_vec(&node_request).unwrap_or_default();
        (Method::POST, format!("/indexes/{uid}/documents/fetch"), Some(NodeBody::json(bytes)))
    })
    .await
}
