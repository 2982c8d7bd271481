//! A client's expression naming Miroir's bookkeeping field gets one node's answer.
//!
//! `_miroir_shard` is filterable on every node (Miroir restricts nodes to shards with it), so a
//! client's `filter`, `facets` or `facetName` naming it would be accepted, while one node
//! holding only the client's settings refuses an attribute the client never made filterable.
//! Miroir cannot write that refusal itself without copying the node's parser (the message
//! quotes the expression and positions in it), so it asks a node: the client's request with the
//! field renamed to [`DISGUISE`] (same length, so positions do not move, and filterable
//! nowhere), and the node's error comes back with the name restored. When the node accepts the
//! renamed request, the name was only inside a value, and the request goes on as sent.

use axum::http::Method;
use bytes::Bytes;
use miroir_cluster::NodeResponse;
use miroir_types::{ApiError, ErrorCode, ForwardedError, NodeId};
use serde_json::Value;

use crate::auth::Caller;
use crate::bookkeeping::SHARD_FIELD;
use crate::error::HttpResult;
use crate::fanout::first_answer_for;
use crate::AppState;

/// The name sent to a node instead of [`SHARD_FIELD`]: the same length, and no node has it.
pub const DISGUISE: &str = "_miroir_shar_";

/// The request fields that name attributes to filter or facet on.
const NAMING_FIELDS: [&str; 3] = ["filter", "facets", "facetName"];

/// Whether a text names the bookkeeping field.
pub fn names_shard_field(text: &str) -> bool {
    text.contains(SHARD_FIELD)
}

/// Whether the `filter`, `facets` or `facetName` of a JSON request names the bookkeeping field.
pub fn request_names_shard_field(request: &Value) -> bool {
    fn any(value: &Value) -> bool {
        match value {
            Value::String(text) => names_shard_field(text),
            Value::Array(items) => items.iter().any(any),
            _ => false,
        }
    }
    NAMING_FIELDS.iter().any(|field| request.get(field).is_some_and(any))
}

/// `text` with the bookkeeping field renamed to [`DISGUISE`].
pub fn disguise(text: &str) -> String {
    text.replace(SHARD_FIELD, DISGUISE)
}

/// The JSON request with the bookkeeping field renamed in its `filter`, `facets` and
/// `facetName`.
pub fn disguised_request(request: &Value) -> Value {
    fn rename(value: &mut Value) {
        match value {
            Value::String(text) => *text = disguise(text),
            Value::Array(items) => items.iter_mut().for_each(rename),
            _ => {}
        }
    }
    let mut out = request.clone();
    for field in NAMING_FIELDS {
        if let Some(value) = out.get_mut(field) {
            rename(value);
        }
    }
    out
}

/// A node's answer to a disguised request with the field's own name back.
pub fn restored(body: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(body) {
        Ok(text) => text.replace(DISGUISE, SHARD_FIELD).into_bytes(),
        Err(_) => body.to_vec(),
    }
}

/// Sends the disguised `request` (method, path with query, JSON body) to one node of `uid`;
/// the node's refusal, with the name restored, is the client's answer.
pub async fn refuse_like_one_node(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    (method, path, body): (Method, &str, Option<Bytes>),
) -> HttpResult<()> {
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let no_more = |_: &NodeResponse| false;
    let response =
        first_answer_for(state, uid, caller.node_auth(), nodes, (method, path, body), no_more)
            .await?;
    if response.is_success() {
        return Ok(());
    }
    Err(ForwardedError::new(response.status, restored(&response.body)).into())
}

/// For a JSON read (`search`, `facet-search`) of `uid` whose request names the bookkeeping
/// field: the error one node gives, if it gives one.
pub async fn check_json_read(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    route: &str,
    request: &Value,
) -> HttpResult<()> {
    if route == "search" && has_wildcard_facet(request) {
        refuse_wildcard_without_filterable(state, uid, request).await?;
    }
    if !request_names_shard_field(request) {
        return Ok(());
    }
    crate::read_catalog::index_for_read(state, uid).await?;
    let bytes = serde_json::to_vec(&disguised_request(request))
        .map_err(|e| crate::error::HttpError::Internal(e.to_string()))?;
    let path = format!("/indexes/{uid}/{route}");
    refuse_like_one_node(state, caller, uid, (Method::POST, &path, Some(Bytes::from(bytes)))).await
}

/// Whether the search's `facets` holds a pattern (`*`, `genre*`): a pattern may match the
/// bookkeeping field, which is filterable on every node.
fn has_wildcard_facet(request: &Value) -> bool {
    request
        .get("facets")
        .and_then(Value::as_array)
        .is_some_and(|facets| facets.iter().any(|f| f.as_str().is_some_and(|f| f.contains('*'))))
}

/// One node holding only the client's settings refuses a facet pattern when the index has no
/// filterable attribute; on Miroir's nodes the bookkeeping field would make it succeed.
async fn refuse_wildcard_without_filterable(
    state: &AppState,
    uid: &str,
    request: &Value,
) -> HttpResult<()> {
    crate::read_catalog::index_for_read(state, uid).await?;
    let nodes: Vec<NodeId> = state.topology().nodes().cloned().collect();
    let path = format!("/indexes/{uid}/settings/filterable-attributes");
    let no_more = |_: &NodeResponse| false;
    let response = first_answer_for(
        state,
        uid,
        miroir_cluster::NodeAuth::NodeKey,
        nodes,
        (Method::GET, &path, None),
        no_more,
    )
    .await?;
    if !response.is_success() {
        return Ok(());
    }
    let is_bookkeeping = |a: &Value| {
        a == SHARD_FIELD
            || a["attributePatterns"]
                .as_array()
                .is_some_and(|p| !p.is_empty() && p.iter().all(|x| x == SHARD_FIELD))
    };
    let client_filterable =
        response.json().as_array().is_some_and(|list| list.iter().any(|a| !is_bookkeeping(a)));
    if client_filterable {
        return Ok(());
    }
    let pattern = request["facets"]
        .as_array()
        .and_then(|f| f.iter().filter_map(Value::as_str).find(|f| f.contains('*')))
        .unwrap_or("*");
    Err(ApiError::new(
        ErrorCode::InvalidSearchFacets,
        format!(
            "Invalid facet distribution: Pattern `{pattern}` is not filterable. This index does \
             not have configured filterable attributes."
        ),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_facets_and_facet_names_are_looked_at() {
        assert!(request_names_shard_field(&json!({"filter": "_miroir_shard.s1 EXISTS"})));
        assert!(request_names_shard_field(&json!({"filter": [["a = 1", "_miroir_shard = 2"]]})));
        assert!(request_names_shard_field(&json!({"facets": ["brand", "_miroir_shard"]})));
        assert!(request_names_shard_field(&json!({"facetName": "_miroir_shard"})));
        assert!(!request_names_shard_field(&json!({"q": "_miroir_shard", "filter": "a = 1"})));
    }

    #[test]
    fn the_disguise_keeps_positions_and_is_undone() {
        assert_eq!(DISGUISE.len(), SHARD_FIELD.len());
        let request = json!({"q": "_miroir_shard", "filter": ["_miroir_shard = 1"],
                             "facets": ["_miroir_shard"]});
        assert_eq!(
            disguised_request(&request),
            json!({"q": "_miroir_shard", "filter": ["_miroir_shar_ = 1"],
                   "facets": ["_miroir_shar_"]})
        );
        let node = br#"{"message":"Attribute `_miroir_shar_` is not filterable.\n1:14 _miroir_shar_ = 1"}"#;
        assert_eq!(
            String::from_utf8(restored(node)).unwrap(),
            r#"{"message":"Attribute `_miroir_shard` is not filterable.\n1:14 _miroir_shard = 1"}"#
        );
    }
}
