//! Federated multi-search: the paging and facet options. The merge itself is the host's
//! (`federated-search`), which can count each document once across shards.

use miroir_plugin_sdk::serde_json::{json, Map, Value};

use crate::QueryError;

/// `federation: {limit, offset}` or `{page, hitsPerPage}`, with `facetsByIndex` and
/// `mergeFacets`, validated.
pub(crate) struct Options {
    federation: Map<String, Value>,
}

fn type_error(key: &str, code: &str, expected: &str, found: &Value) -> QueryError {
    QueryError::new(
        400,
        code,
        format!("Invalid value type at `.federation.{key}`: expected {expected}, but found: {found}"),
    )
}

/// `facetsByIndex`: index uid → the facets asked of it.
fn facets_by_index(value: &Value) -> Result<Value, QueryError> {
    let code = "invalid_multi_search_facets_by_index";
    let Value::Object(indexes) = value else {
        return Err(type_error("facetsByIndex", code, "an object", value));
    };
    for (uid, facets) in indexes {
        let strings = facets.as_array().is_some_and(|list| list.iter().all(Value::is_string));
        if !strings {
            let key = format!("facetsByIndex.{uid}");
            return Err(type_error(&key, code, "an array of strings", facets));
        }
    }
    Ok(value.clone())
}

/// `mergeFacets`: `{maxValuesPerFacet}`.
fn merge_facets(value: &Value) -> Result<Value, QueryError> {
    let code = "invalid_multi_search_merge_facets";
    let Value::Object(options) = value else {
        return Err(type_error("mergeFacets", code, "an object", value));
    };
    match options.get("maxValuesPerFacet") {
        None | Some(Value::Null) => {}
        Some(n) if n.is_u64() => {}
        Some(other) => {
            return Err(type_error(
                "mergeFacets.maxValuesPerFacet",
                code,
                "a positive integer",
                other,
            ))
        }
    }
    Ok(value.clone())
}

fn non_negative(options: &Map<String, Value>, key: &str) -> Result<Option<u64>, QueryError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            QueryError::new(
                400,
                &format!("invalid_multi_search_federation_{key}"),
                format!("Invalid value type at `.federation.{key}`: expected a positive integer, but found: {value}"),
            )
        }),
    }
}

impl Options {
    pub(crate) fn parse(options: &Map<String, Value>) -> Result<Self, QueryError> {
        let mut federation = Map::new();
        for key in ["limit", "offset", "page", "hitsPerPage"] {
            if let Some(value) = non_negative(options, key)? {
                federation.insert(key.to_owned(), json!(value));
            }
        }
        if !federation.contains_key("page") && !federation.contains_key("hitsPerPage") {
            federation.entry("limit").or_insert(json!(20));
            federation.entry("offset").or_insert(json!(0));
        }
        if let Some(value) = options.get("facetsByIndex").filter(|v| !v.is_null()) {
            federation.insert("facetsByIndex".to_owned(), facets_by_index(value)?);
        }
        if let Some(value) = options.get("mergeFacets").filter(|v| !v.is_null()) {
            federation.insert("mergeFacets".to_owned(), merge_facets(value)?);
        }
        Ok(Options { federation })
    }

    /// The request handed to the host's `federated-search`: the client's queries (with their
    /// `indexUid` and `federationOptions`), the validated federation (`page`/`hitsPerPage` make
    /// the host answer `totalHits` and `totalPages`, as one node) and facet options.
    pub(crate) fn host_request(&self, body: &Value) -> Value {
        json!({
            "federation": Value::Object(self.federation.clone()),
            "queries": body.get("queries").cloned().unwrap_or_else(|| json!([])),
        })
    }
}
