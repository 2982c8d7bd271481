//! Search replay (`--replay-searches`): a search the node already answered is answered again,
//! byte for byte, from memory until the next task is applied.
//!
//! For benchmarks of the gateway in front of the node: the development node scans every
//! document under one lock on every search, a cost a real Meilisearch does not have, which
//! would drown the gateway's own. The answer replayed is the one the node computed for the
//! same method, path, query, `Authorization` header and body (`processingTimeMs` included).
//! Off by default; tests never turn it on.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::Node;

/// At most this many answers are kept; the cache is emptied when it is full.
const KEPT: usize = 4096;

/// What identifies a search: method and URI, `Authorization` header, body.
type Key = (String, Option<HeaderValue>, Bytes);

/// Recorded answers, each with the [`crate::state::Db::generation`] it was computed at.
#[derive(Debug, Default)]
pub struct Replay {
    answers: HashMap<Key, (u64, StatusCode, Option<HeaderValue>, Bytes)>,
}

/// Answers a recorded search from memory, records the others (when replay is on).
pub async fn replay(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    if !node.replays_searches() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::empty())
            .expect("a valid response");
    };
    let key: Key = (
        format!("{} {}", parts.method, parts.uri),
        parts.headers.get(header::AUTHORIZATION).cloned(),
        bytes.clone(),
    );
    let generation = node.db().generation;
    if let Some((at, status, content_type, answer)) = node.replay().answers.get(&key).cloned() {
        if at == generation {
            let mut response = Response::new(Body::from(answer));
            *response.status_mut() = status;
            if let Some(content_type) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            }
            return response;
        }
    }
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let Ok(answer) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut replay = node.replay();
    if replay.answers.len() >= KEPT {
        replay.answers.clear();
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
    replay.answers.insert(key, (generation, parts.status, content_type, answer.clone()));
    Response::from_parts(parts, Body::from(answer))
}
