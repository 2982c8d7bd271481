//! `POST /indexes/{uid}/fields`: the index's fields with what its settings make of each. A node
//! knows only the fields of the documents it holds, so every node is asked for all its fields;
//! the lists are merged by name, in the order Miroir's catalog first saw each field (the order
//! one node holding every document lists them), bookkeeping fields hidden, then paged.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use miroir_cluster::NodeBody;
use miroir_types::{ForwardedError, NodeId};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::body::{json_body, RawBody};
use crate::bookkeeping::is_reserved;
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeStep};
use crate::AppState;

/// Asked of every node: all of its fields at once.
const ALL: u64 = 1_000_000;

/// `POST /indexes/{uid}/fields`.
pub async fn list_fields(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> HttpResult<Response> {
    let meta = crate::catalog::existing(&state, &uid).await?;
    let mut body = if raw.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_body(&headers, &raw)?
    };
    let page = |key: &str, default: u64| body.get(key).and_then(Value::as_u64).unwrap_or(default);
    let (offset, limit) = (page("offset", 0), page("limit", 20));
    let well_formed = ["offset", "limit"]
        .iter()
        .all(|key| body.get(*key).is_none_or(|v| v.is_null() || v.is_u64()));
    if well_formed {
        if let Value::Object(map) = &mut body {
            map.insert("offset".into(), json!(0));
            map.insert("limit".into(), json!(ALL));
        }
    }
    // A malformed body goes as it is: every node refuses it as one node would.
    let bytes = serde_json::to_vec(&body).map_err(|e| HttpError::Internal(e.to_string()))?;
    let step =
        NodeStep::new(Method::POST, format!("/indexes/{uid}/fields"), Some(NodeBody::json(bytes)));
    let outcomes =
        fanout::run(&state, caller.node_auth(), fanout::broadcast(&state, vec![step])).await;
    // Fields in the order the nodes list them (topology order, each new name appended), then
    // in the order Miroir's catalog first saw them where it knows.
    let mut fields: Vec<(String, Value)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut answered = false;
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let mut outcomes = outcomes;
    for node in nodes {
        let Some(outcome) = outcomes.remove(&node) else { continue };
        match outcome {
            Ok(response) if response.is_success() => {
                answered = true;
                for field in response.json()["results"].as_array().into_iter().flatten() {
                    let Some(name) = field["name"].as_str() else { continue };
                    if !is_reserved(name) && seen.insert(name.to_owned()) {
                        fields.push((name.to_owned(), field.clone()));
                    }
                }
            }
            Ok(response) if (400..500).contains(&response.status) => {
                return Err(ForwardedError::new(response.status, response.body.to_vec()).into());
            }
            _ => {}
        }
    }
    if !answered {
        return Err(HttpError::Internal("no node answered the fields of the index".into()));
    }
    let rank = |name: &str| meta.fields.iter().position(|f| f == name).unwrap_or(usize::MAX);
    fields.sort_by_key(|(name, _)| rank(name));
    let total = fields.len();
    let results: Vec<Value> = fields
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|(_, field)| field)
        .collect();
    Ok(Json(json!({"results": results, "offset": offset, "limit": limit, "total": total}))
        .into_response())
}
