//! Search routes: `POST` and `GET /indexes/{uid}/search`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{auth, check_uid, json_body, ok_json, query_pairs, restrict_body, restrict_pairs};
use crate::error::ApiError;
use crate::search::{parse_search_body, parse_search_params, search, SearchQuery};
use crate::state::Node;

fn run(node: &Node, uid: &str, query: &SearchQuery) -> Result<Response, ApiError> {
    let db = node.db();
    let index = db.index(uid)?;
    Ok(ok_json(search(index, query)?))
}

pub async fn search_post(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    let access = auth(&node, &headers, "search", Some(&uid))?;
    let mut body = json_body(&headers, &body)?;
    restrict_body(&mut body, access.search_filter(&uid));
    let query = parse_search_body(&body)?;
    run(&node, &uid, &query)
}

pub async fn search_get(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    let access = auth(&node, &headers, "search", Some(&uid))?;
    let mut pairs = query_pairs(q.as_deref());
    restrict_pairs(&mut pairs, access.search_filter(&uid));
    let query = parse_search_params(&pairs)?;
    run(&node, &uid, &query)
}
