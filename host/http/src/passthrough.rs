//! Routes any one node answers for the whole cluster (`/version`): forwarded to the first node
//! that answers, with bookkeeping stripped.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::Value;

use crate::auth::Caller;
use crate::body::RawBody;
use crate::bookkeeping::is_reserved;
use crate::documents::strip_document;
use crate::error::HttpResult;
use crate::AppState;

fn strip_answer(value: &mut Value) {
    if let Value::Object(map) = value {
        for key in ["hits", "results"] {
            if let Some(Value::Array(items)) = map.get_mut(key) {
                items.iter_mut().for_each(strip_document);
            }
        }
        for key in ["fieldDistribution", "facetDistribution", "facetStats"] {
            if let Some(Value::Object(fields)) = map.get_mut(key) {
                fields.retain(|field, _| !is_reserved(field));
            }
        }
    }
}

/// `GET /health`: Miroir's own liveness, as Meilisearch answers it.
pub async fn health() -> Json<Value> {
    Json(serde_json::json!({ "status": "available" }))
}

/// Forwards the request to the first node that answers.
pub async fn forward(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    request: Request<Body>,
) -> HttpResult<Response> {
    let method = request.method().clone();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let content_type = request.headers().get(header::CONTENT_TYPE).is_some();
    let RawBody(body) =
        <RawBody as axum::extract::FromRequest<AppState>>::from_request(request, &state).await?;
    let nodes: Vec<_> = state.topology().nodes().cloned().collect();
    let body = (content_type || !body.is_empty()).then_some(body);
    let response =
        crate::fanout::first_answer(&state, caller.node_auth(), nodes, method, &path, body).await?;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut json = response.json();
    if json.is_null() {
        return Ok((status, response.body).into_response());
    }
    strip_answer(&mut json);
    Ok((status, Json(json)).into_response())
}
