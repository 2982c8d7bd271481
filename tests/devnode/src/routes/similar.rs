//! `POST` and `GET /indexes/{uid}/similar`: the documents whose embeddings are closest to one
//! document's, by the same semantic score as a vector search.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{auth, check_uid, json_body, ok_json, query_pairs, restrict_body, restrict_pairs};
use crate::error::ApiError;
use crate::index::Index;
use crate::search::vectors::{check_embedder, embeddings};
use crate::search::{parse_search_body, parse_search_params, run, SearchQuery};
use crate::state::Node;

/// The fields `similar` accepts, in the order Meilisearch's error message lists them.
const FIELDS: [&str; 11] = [
    "id",
    "offset",
    "limit",
    "attributesToRetrieve",
    "retrieveVectors",
    "filter",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
    "rankingScoreThreshold",
    "embedder",
];

/// A `similar` request: the document, the embedder and the search options it shares with
/// `search`.
struct Similar {
    id: Option<Value>,
    embedder: Option<String>,
    query: SearchQuery,
}

/// Search errors carry `invalid_search_*` codes; `similar` answers `invalid_similar_*`.
fn similar_code(mut err: ApiError) -> ApiError {
    if let Some(rest) = err.code.strip_prefix("invalid_search_") {
        err.code = format!("invalid_similar_{rest}");
    }
    err
}

fn unknown(other: &str, what: &str) -> ApiError {
    let expected = FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
    ApiError::new("bad_request", format!("Unknown {what} `{other}`: expected one of {expected}"))
}

fn parse_body(body: &Value) -> Result<Similar, ApiError> {
    let obj = body.as_object().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found `{body}`"),
        )
    })?;
    let mut shared = Map::new();
    let mut id = None;
    let mut embedder = None;
    for (key, v) in obj {
        match key.as_str() {
            "id" => id = Some(v.clone()),
            "embedder" => {
                embedder = Some(v.as_str().map(String::from).ok_or_else(|| {
                    ApiError::new(
                        "invalid_similar_embedder",
                        format!(
                            "Invalid value type at `.embedder`: expected a string, but found `{v}`"
                        ),
                    )
                })?)
            }
            k if FIELDS.contains(&k) => {
                shared.insert(key.clone(), v.clone());
            }
            other => return Err(unknown(other, "field")),
        }
    }
    let query = parse_search_body(&Value::Object(shared)).map_err(similar_code)?;
    Ok(Similar { id, embedder, query })
}

fn parse_params(pairs: &[(String, String)]) -> Result<Similar, ApiError> {
    let mut shared = Vec::new();
    let mut id = None;
    let mut embedder = None;
    for (key, value) in pairs {
        match key.as_str() {
            "id" => id = Some(Value::String(value.clone())),
            "embedder" => embedder = Some(value.clone()),
            k if FIELDS.contains(&k) => shared.push((key.clone(), value.clone())),
            other => return Err(unknown(other, "parameter")),
        }
    }
    let query = parse_search_params(&shared).map_err(similar_code)?;
    Ok(Similar { id, embedder, query })
}

/// The document id as text, checked like a document id.
fn document_id(id: Option<&Value>) -> Result<String, ApiError> {
    let bad = |v: &Value| {
        ApiError::new(
            "invalid_similar_id",
            format!("Invalid value at `.id`: the value of `id` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes. Found `{v}`."),
        )
    };
    match id {
        None => Err(ApiError::new("missing_similar_id", "Missing field `id`")),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 511
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(s.clone())
        }
        Some(other) => Err(bad(other)),
    }
}

fn answer(index: &Index, request: Similar) -> Result<Value, ApiError> {
    let started = Instant::now();
    let id = document_id(request.id.as_ref())?;
    let embedder = request
        .embedder
        .ok_or_else(|| ApiError::new("missing_similar_embedder", "Missing field `embedder`"))?;
    check_embedder(&index.settings, &embedder, "invalid_similar_embedder")?;
    let doc = index.documents.get(&id).ok_or_else(|| {
        ApiError::new(
            "not_found_similar_id",
            format!("Invalid value at `.id`: Document `{id}` not found."),
        )
    })?;
    let mut query = request.query;
    let vector = embeddings(doc, &embedder).into_iter().next().unwrap_or_default();
    query.vector = Some(vector.iter().map(|x| f64::from(*x)).collect());
    query.hybrid = Some(json!({"embedder": embedder, "semanticRatio": 1.0}));
    let outcome = if vector.is_empty() { None } else { Some(run(index, &query, Some(&id))?) };
    let (hits, total) = match &outcome {
        Some(o) => (o.page().0, o.len()),
        None => (Vec::new(), 0),
    };
    Ok(json!({
        "hits": hits,
        "id": id,
        "processingTimeMs": started.elapsed().as_millis() as u64,
        "limit": query.limit.unwrap_or(20),
        "offset": query.offset.unwrap_or(0),
        "estimatedTotalHits": total,
    }))
}

fn respond(node: &Node, uid: &str, request: Similar) -> Result<Response, ApiError> {
    let db = node.db();
    let index = db.index(uid)?;
    Ok(ok_json(answer(index, request)?))
}

pub async fn similar_post(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    let access = auth(&node, &headers, "search", Some(&uid))?;
    let mut body = json_body(&headers, &body)?;
    restrict_body(&mut body, access.search_filter(&uid));
    let request = parse_body(&body)?;
    respond(&node, &uid, request)
}

pub async fn similar_get(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    let access = auth(&node, &headers, "search", Some(&uid))?;
    let mut pairs = query_pairs(q.as_deref());
    restrict_pairs(&mut pairs, access.search_filter(&uid));
    let request = parse_params(&pairs)?;
    respond(&node, &uid, request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_document_ids() {
        assert_eq!(document_id(Some(&json!(7))).ok().as_deref(), Some("7"));
        assert_eq!(document_id(Some(&json!("a-1"))).ok().as_deref(), Some("a-1"));
        let code = |v: Option<Value>| document_id(v.as_ref()).err().map(|e| e.code);
        assert_eq!(code(Some(json!("a b"))).as_deref(), Some("invalid_similar_id"));
        assert_eq!(code(Some(json!(1.5))).as_deref(), Some("invalid_similar_id"));
        assert_eq!(code(None).as_deref(), Some("missing_similar_id"));
    }

    #[test]
    fn shared_options_keep_their_meaning_and_get_similar_codes() {
        let r =
            parse_body(&json!({"id": 7, "embedder": "e", "limit": 3, "showRankingScore": true}));
        let r = r.ok();
        assert_eq!(r.as_ref().map(|r| r.query.limit), Some(Some(3)));
        assert_eq!(r.map(|r| r.query.show_ranking_score), Some(true));
        let code = |v: Value| parse_body(&v).err().map(|e| e.code);
        assert_eq!(code(json!({"id": 7, "limit": "x"})).as_deref(), Some("invalid_similar_limit"));
        assert_eq!(code(json!({"id": 7, "q": "x"})).as_deref(), Some("bad_request"));
        assert_eq!(
            code(json!({"id": 7, "embedder": 1})).as_deref(),
            Some("invalid_similar_embedder")
        );
    }

    #[test]
    fn similar_documents_leave_the_document_out() {
        let mut index = Index::new("v", Some("id".into()), time::OffsetDateTime::UNIX_EPOCH);
        index
            .settings
            .embedders
            .insert("e".into(), json!({"source": "userProvided", "dimensions": 2}));
        for (id, v) in [("1", [1.0, 0.0]), ("2", [0.9, 0.1]), ("3", [-1.0, 0.0]), ("4", [0.0, 1.0])]
        {
            let doc =
                json!({"id": id, "_vectors": {"e": v}}).as_object().cloned().unwrap_or_default();
            index.documents.insert(id.to_string(), doc);
        }
        let request = parse_body(&json!({"id": "1", "embedder": "e"})).ok();
        let got = request.and_then(|r| answer(&index, r).ok()).unwrap_or_default();
        let ids: Vec<&str> =
            got["hits"].as_array().into_iter().flatten().filter_map(|h| h["id"].as_str()).collect();
        assert_eq!(ids, vec!["2", "4", "3"]);
        assert_eq!(got["id"], "1");
        assert_eq!(got["estimatedTotalHits"], 3);
        let missing =
            parse_body(&json!({"id": "9", "embedder": "e"})).ok().map(|r| answer(&index, r));
        assert_eq!(
            missing.and_then(|r| r.err()).map(|e| e.code).as_deref(),
            Some("not_found_similar_id")
        );
    }
}
