//! `/experimental-features`: every node runs with the same features, so a change is sent to
//! every node and one node's answer is the answer. `/network` (Meilisearch's own sharding
//! between instances) is answered as one node without the `network` feature answers: Miroir
//! is the cluster, and its nodes must not form one of their own.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use miroir_cluster::{NodeAuth, NodeBody, NodeResponse};
use miroir_types::{ErrorCode, ForwardedError, NodeId};

use crate::body::{json_body, RawBody};
use crate::error::{HttpError, HttpResult};
use crate::fanout::{self, NodeStep};
use crate::AppState;

const PATH: &str = "/experimental-features";

fn relay(response: NodeResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut answer = (status, response.body).into_response();
    answer.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// `GET /experimental-features`: one node's features.
pub async fn get_features(State(state): State<AppState>) -> HttpResult<Response> {
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let response =
        fanout::first_answer(&state, NodeAuth::NodeKey, nodes, Method::GET, PATH, None).await?;
    Ok(relay(response))
}

/// `PATCH /experimental-features`: sent to every node; a node's refusal (the client's error) is
/// the answer, a node that cannot be reached fails the change.
pub async fn patch_features(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> HttpResult<Response> {
    json_body(&headers, &body)?;
    let step = NodeStep::bookkeeping(Method::PATCH, PATH, Some(NodeBody::json(body)));
    let outcomes =
        fanout::run(&state, NodeAuth::NodeKey, fanout::broadcast(&state, vec![step])).await;
    let mut first = None;
    let mut failed = Vec::new();
    for (node, outcome) in outcomes {
        match outcome {
            Ok(response) if response.is_success() => {
                first.get_or_insert(response);
            }
            Ok(response) if (400..500).contains(&response.status) => {
                return Err(ForwardedError::new(response.status, response.body.to_vec()).into());
            }
            _ => failed.push(node.to_string()),
        }
    }
    if !failed.is_empty() {
        return Err(HttpError::api(
            ErrorCode::MiroirNoQuorum,
            format!(
                "The change of experimental features did not reach node(s) {}.",
                failed.join(", ")
            ),
        ));
    }
    first.map(relay).ok_or_else(|| HttpError::Internal("no node configured".into()))
}

/// `GET` and `PATCH /network`.
pub async fn network() -> HttpError {
    HttpError::api(
        ErrorCode::FeatureNotEnabled,
        "Using the /network route requires enabling the `network` experimental feature. See \
         https://github.com/orgs/meilisearch/discussions/805",
    )
}
