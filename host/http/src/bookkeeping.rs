//! The bookkeeping Miroir keeps on the nodes, and how it stays invisible.
//!
//! Every document on a node carries `"_miroir_shard": {"s<N>": null}` where `N` is its shard.
//! `_miroir_shard` is filterable on every node, so a repair or rebalance reads or deletes one
//! shard with [`shard_filter`] (`_miroir_shard.s<N> EXISTS`). The shard number is a *field
//! name* holding `null`, never a value: Meilisearch indexes neither field names nor nulls for
//! text search, so with the default `searchableAttributes: ["*"]` no query can match it, and the
//! nodes keep exactly the client's searchable list (with `*`, Meilisearch weighs every
//! attribute the same; an explicit list would rank by position and change relevance). See
//! `docs/architecture.md` ("Bookkeeping").

use miroir_types::ShardId;
use serde_json::{Map, Value};

/// The bookkeeping field every document carries on the nodes.
pub const SHARD_FIELD: &str = "_miroir_shard";

/// The prefix of every reserved document field.
pub const RESERVED_PREFIX: &str = "_miroir_";

/// The value of [`SHARD_FIELD`] for a document of `shard`: `{"s<N>": null}`.
pub fn shard_marker(shard: ShardId) -> Value {
    let mut marker = Map::with_capacity(1);
    marker.insert(format!("s{}", shard.get()), Value::Null);
    Value::Object(marker)
}

/// The filter selecting the documents of `shard` on a node.
pub fn shard_filter(shard: ShardId) -> String {
    format!("{SHARD_FIELD}.s{} EXISTS", shard.get())
}

/// The filter selecting the documents of any of `shards` on a node.
pub fn shards_filter(shards: &[ShardId]) -> String {
    let filters: Vec<String> = shards.iter().map(|shard| shard_filter(*shard)).collect();
    filters.join(" OR ")
}

/// Whether a field name (top-level or flattened, e.g. `_miroir_shard.s3`) is bookkeeping.
pub fn is_reserved(field: &str) -> bool {
    field.starts_with(RESERVED_PREFIX)
}

/// A node's error body with [`SHARD_FIELD`] taken out of the attribute lists its message gives
/// ("Available filterable attributes are: ..."), so the client reads what one node holding only
/// its own settings would say. Other bodies are returned unchanged.
pub fn scrub_error_body(body: Vec<u8>) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(&body) else { return body };
    if !text.contains(SHARD_FIELD) {
        return body;
    }
    let mut out = text.to_owned();
    for only in [
        "Available filterable attribute patterns are: `_miroir_shard`.",
        "Available filterable attributes patterns are: `_miroir_shard`.",
        "Available filterable attributes are: `_miroir_shard`.",
    ] {
        out = out.replace(only, "This index does not have configured filterable attributes.");
    }
    for listed in ["`_miroir_shard`, ", ", `_miroir_shard`", "_miroir_shard, ", ", _miroir_shard"] {
        out = out.replace(listed, "");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_is_a_field_name_holding_null() {
        assert_eq!(shard_marker(ShardId::new(12)), serde_json::json!({"s12": null}));
        assert_eq!(shard_filter(ShardId::new(12)), "_miroir_shard.s12 EXISTS");
        assert!(is_reserved("_miroir_shard.s3"));
        assert!(!is_reserved("miroir"));
    }

    #[test]
    fn error_messages_do_not_list_the_shard_field() {
        let scrub = |m: &str| String::from_utf8(scrub_error_body(m.as_bytes().to_vec())).unwrap();
        assert_eq!(
            scrub("Available filterable attribute patterns are: `_geo`, `_miroir_shard`, `brand`."),
            "Available filterable attribute patterns are: `_geo`, `brand`."
        );
        assert_eq!(
            scrub("patterns are: `_miroir_shard, brand, price`."),
            "patterns are: `brand, price`."
        );
        assert_eq!(scrub("are: `brand, _miroir_shard`."), "are: `brand`.");
        assert_eq!(
            scrub("Attribute `x` is not filterable. Available filterable attribute patterns are: `_miroir_shard`."),
            "Attribute `x` is not filterable. This index does not have configured filterable attributes."
        );
        assert_eq!(scrub("nothing to do"), "nothing to do");
    }
}
