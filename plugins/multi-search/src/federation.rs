//! Federated multi-search: the paging options. The merge itself is the host's
//! (`federated-search`), which can count each document once across shards.

use miroir_plugin_sdk::serde_json::{json, Map, Value};

use crate::QueryError;

/// `federation: {limit, offset}` or `{page, hitsPerPage}`, validated.
pub(crate) struct Options {
    paging: Map<String, Value>,
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
        let mut paging = Map::new();
        for key in ["limit", "offset", "page", "hitsPerPage"] {
            if let Some(value) = non_negative(options, key)? {
                paging.insert(key.to_owned(), json!(value));
            }
        }
        if !paging.contains_key("page") && !paging.contains_key("hitsPerPage") {
            paging.entry("limit").or_insert(json!(20));
            paging.entry("offset").or_insert(json!(0));
        }
        Ok(Options { paging })
    }

    /// The request handed to the host's `federated-search`: the client's queries (with their
    /// `indexUid` and `federationOptions`) and the validated paging (`page`/`hitsPerPage` make
    /// the host answer `totalHits` and `totalPages`, as one node).
    pub(crate) fn host_request(&self, body: &Value) -> Value {
        json!({
            "federation": Value::Object(self.paging.clone()),
            "queries": body.get("queries").cloned().unwrap_or_else(|| json!([])),
        })
    }
}
