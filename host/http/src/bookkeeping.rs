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

/// Whether a field name (top-level or flattened, e.g. `_miroir_shard.s3`) is bookkeeping.
pub fn is_reserved(field: &str) -> bool {
    field.starts_with(RESERVED_PREFIX)
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
}
