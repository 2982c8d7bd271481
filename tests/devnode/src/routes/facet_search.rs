//! `POST /indexes/{uid}/facet-search`: the values of one facet among the documents a search
//! matches, filtered by `facetQuery` (prefix and typos).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{auth, check_uid, json_body, ok_json, restrict_body};
use crate::error::ApiError;
use crate::search::{check_facet_searchable, facet_search, parse_search_body, run};
use crate::state::Node;

/// The fields a facet search accepts, in the order Meilisearch's error message lists them.
const FIELDS: [&str; 11] = [
    "facetQuery",
    "facetName",
    "q",
    "vector",
    "hybrid",
    "filter",
    "matchingStrategy",
    "attributesToSearchOn",
    "rankingScoreThreshold",
    "locales",
    "exhaustiveFacetCount",
];

/// The request: the facet, the facet query, and the search whose documents are counted.
struct FacetSearch {
    name: String,
    query: Option<String>,
    search: Value,
}

fn parse(body: &Value) -> Result<FacetSearch, ApiError> {
    let obj = body.as_object().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found `{body}`"),
        )
    })?;
    let mut name = None;
    let mut query = None;
    let mut search = Map::new();
    for (key, v) in obj {
        match key.as_str() {
            "facetName" => {
                name = Some(v.as_str().map(String::from).ok_or_else(|| {
                    ApiError::new(
                        "invalid_facet_search_facet_name",
                        format!("Invalid value type at `.facetName`: expected a string, but found `{v}`"),
                    )
                })?)
            }
            "facetQuery" => {
                query = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => {
                        return Err(ApiError::new(
                            "invalid_facet_search_facet_query",
                            format!("Invalid value type at `.facetQuery`: expected a string, but found `{other}`"),
                        ))
                    }
                }
            }
            "exhaustiveFacetCount" => {
                if !v.is_boolean() && !v.is_null() {
                    return Err(ApiError::new(
                        "invalid_facet_search_exhaustive_facet_count",
                        format!("Invalid value type at `.exhaustiveFacetCount`: expected a boolean, but found `{v}`"),
                    ));
                }
            }
            k if FIELDS.contains(&k) => {
                search.insert(key.clone(), v.clone());
            }
            other => {
                let expected = FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown field `{other}`: expected one of {expected}"),
                ));
            }
        }
    }
    let name = name.ok_or_else(|| {
        ApiError::new("missing_facet_search_facet_name", "Missing field `facetName`")
    })?;
    Ok(FacetSearch { name, query, search: Value::Object(search) })
}

pub async fn facet_search_post(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    check_uid(&uid)?;
    let access = auth(&node, &headers, "search", Some(&uid))?;
    let mut request = parse(&json_body(&headers, &body)?)?;
    restrict_body(&mut request.search, access.search_filter(&uid));
    let query = parse_search_body(&request.search)?;
    let db = node.db();
    let index = db.index(&uid)?;
    check_facet_searchable(index, &request.name)?;
    let outcome = run(index, &query, None)?;
    let wanted = request.query.clone().unwrap_or_default();
    let hits: Vec<Value> = facet_search(index, &request.name, &wanted, outcome.documents())
        .into_iter()
        .map(|(value, count)| json!({"value": value, "count": count}))
        .collect();
    Ok(ok_json(json!({
        "facetHits": hits,
        "facetQuery": request.query,
        "processingTimeMs": started.elapsed().as_millis() as u64,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: Value) -> Option<String> {
        parse(&body).err().map(|e| e.code)
    }

    #[test]
    fn the_request_splits_into_facet_and_search() {
        let r = parse(
            &json!({"facetName": "brand", "facetQuery": "w", "q": "black", "filter": "x = 1"}),
        );
        let r = r.ok();
        assert_eq!(r.as_ref().map(|r| r.name.as_str()), Some("brand"));
        assert_eq!(r.as_ref().and_then(|r| r.query.clone()).as_deref(), Some("w"));
        assert_eq!(r.map(|r| r.search), Some(json!({"q": "black", "filter": "x = 1"})));
        assert_eq!(
            code(json!({"facetQuery": "w"})).as_deref(),
            Some("missing_facet_search_facet_name")
        );
        assert_eq!(
            code(json!({"facetName": 1})).as_deref(),
            Some("invalid_facet_search_facet_name")
        );
        assert_eq!(
            code(json!({"facetName": "b", "facetQuery": 2})).as_deref(),
            Some("invalid_facet_search_facet_query")
        );
        assert_eq!(code(json!({"facetName": "b", "limit": 2})).as_deref(), Some("bad_request"));
    }
}
