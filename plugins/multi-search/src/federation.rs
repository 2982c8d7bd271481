//! Federated multi-search: the paging options. The merge itself is the host's
//! (`federated-search`), which can count each document once across shards.

use miroir_plugin_sdk::serde_json::{json, Map, Value};

use crate::QueryError;

/// `federation: {limit, offset}`.
pub(crate) struct Options {
    limit: usize,
    offset: usize,
}

fn non_negative(
    options: &Map<String, Value>,
    key: &str,
    default: usize,
) -> Result<usize, QueryError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_u64().map(|v| v as usize).ok_or_else(|| {
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
        Ok(Options {
            limit: non_negative(options, "limit", 20)?,
            offset: non_negative(options, "offset", 0)?,
        })
    }

    /// The request handed to the host's `federated-search`: the client's queries (with their
    /// `indexUid` and `federationOptions`) and the validated paging.
    pub(crate) fn host_request(&self, body: &Value) -> Value {
        json!({
            "federation": { "limit": self.limit, "offset": self.offset },
            "queries": body.get("queries").cloned().unwrap_or_else(|| json!([])),
        })
    }
}
