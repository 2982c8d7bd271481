//! Turning parsed documents into one batch per node: primary key resolution, id validation,
//! the shard of every document, the `_miroir_shard` bookkeeping field, and serialization.
//!
//! This is the hot part of the write path; `benches/route_batch.rs` measures it against a plain
//! parse and serialize of the same bytes.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use miroir_cluster::{shard_of, Assignment};
use miroir_types::{ApiError, ErrorCode, NodeId, ShardId};
use serde_json::Value;

use crate::bookkeeping::{shard_marker, RESERVED_PREFIX, SHARD_FIELD};
use crate::documents::parse::Document;

/// Refuses documents carrying a reserved (`_miroir_*`) field.
pub fn check_reserved(documents: &[Document]) -> Result<(), ApiError> {
    for document in documents {
        if let Some(field) = document.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
            return Err(ApiError::reserved_field(field));
        }
    }
    Ok(())
}

/// How the primary key of a write was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrimaryKey {
    /// Known: the index's, or `?primaryKey=`, or inferred.
    Known(String),
    /// Several fields end with `id`: Meilisearch fails the task with this error.
    Ambiguous(ApiError),
    /// No field ends with `id` and none was given.
    Missing,
}

/// Resolves the primary key as Meilisearch does: the index's, else `?primaryKey=`, else the one
/// field of the first document whose name ends with `id` (case-insensitively).
pub fn resolve_primary_key(
    index_key: Option<&str>,
    query_key: Option<&str>,
    documents: &[Document],
) -> PrimaryKey {
    if let Some(key) = index_key.or(query_key) {
        return PrimaryKey::Known(key.to_owned());
    }
    let Some(first) = documents.first() else { return PrimaryKey::Missing };
    let candidates: Vec<&String> =
        first.keys().filter(|k| k.to_ascii_lowercase().ends_with("id")).collect();
    match candidates.as_slice() {
        [] => PrimaryKey::Missing,
        [one] => PrimaryKey::Known((*one).clone()),
        [a, b, ..] => PrimaryKey::Ambiguous(ApiError::new(
            ErrorCode::IndexPrimaryKeyMultipleCandidatesFound,
            format!(
                "The primary key inference failed as the engine found {} fields ending with `id` \
                 in their names: '{a}' and '{b}'. Please specify the primary key manually using \
                 the `primaryKey` query parameter.",
                candidates.len()
            ),
        )),
    }
}

/// The error a write's task fails with when no primary key can be resolved, as one node's.
pub fn no_primary_key_candidate() -> ApiError {
    ApiError::new(
        ErrorCode::IndexPrimaryKeyNoCandidateFound,
        "The primary key inference failed as the engine did not find any field ending with `id` \
         in its name. Please specify the primary key manually using the `primaryKey` query \
         parameter.",
    )
}

/// A document id as Meilisearch accepts it, as the string that is hashed.
pub fn document_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => valid_id_string(s).then(|| s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `s` is a valid document id string.
pub fn valid_id_string(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 511
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `invalid_document_id` for `value`, with Meilisearch's message.
pub fn invalid_document_id(value: &Value) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidDocumentId,
        format!(
            "Document identifier `{value}` is invalid. A document identifier can be of type \
             integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens \
             (-) and underscores (_), and can not be more than 511 bytes."
        ),
    )
}

/// Documents split by target node, ready to send.
#[derive(Debug, Clone, Default)]
pub struct RoutedBatch {
    /// The JSON array each node receives.
    pub per_node: BTreeMap<NodeId, Bytes>,
    /// The shards the batch touches (quorum is checked on these).
    pub shards: BTreeSet<ShardId>,
    /// How many documents were routed.
    pub documents: usize,
    /// The documents' ids by shard, to undo the batch on nodes that took it when it is refused.
    pub ids: BTreeMap<ShardId, Vec<String>>,
}

/// Validates every document's id, adds `_miroir_shard` (see [`shard_marker`]), and splits the
/// documents by target node (every group's owners of the document's shard). A document error
/// is returned as Meilisearch reports it in a failed task.
pub fn route(
    documents: Vec<Document>,
    primary_key: &str,
    assignment: &Assignment,
) -> Result<RoutedBatch, ApiError> {
    let shard_count = assignment.shards();
    // Owner lists per shard, resolved once: position in `nodes` of every target.
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut targets: Vec<Option<Vec<usize>>> = vec![None; shard_count as usize];
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut shards = BTreeSet::new();
    let mut ids: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
    let count = documents.len();
    let mut scratch = Vec::with_capacity(512);
    for mut document in documents {
        let id = match document.get(primary_key) {
            None => {
                let shown = serde_json::to_string(&document).unwrap_or_default();
                return Err(ApiError::new(
                    ErrorCode::MissingDocumentId,
                    format!("Document doesn't have a `{primary_key}` attribute: `{shown}`."),
                ));
            }
            Some(value) => document_id(value).ok_or_else(|| invalid_document_id(value))?,
        };
        let shard = shard_of(&id, shard_count);
        shards.insert(shard);
        ids.entry(shard).or_default().push(id);
        document.insert(SHARD_FIELD.to_owned(), shard_marker(shard));
        scratch.clear();
        serde_json::to_writer(&mut scratch, &document)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
        let slot = &mut targets[shard.get() as usize];
        if slot.is_none() {
            let mut positions = Vec::new();
            for (_, owners) in assignment.write_targets(shard) {
                for owner in owners {
                    let position = match nodes.iter().position(|n| n == owner) {
                        Some(p) => p,
                        None => {
                            nodes.push(owner.clone());
                            buffers.push(Vec::with_capacity(64 * 1024));
                            nodes.len() - 1
                        }
                    };
                    positions.push(position);
                }
            }
            *slot = Some(positions);
        }
        for &position in slot.iter().flatten() {
            let buffer = &mut buffers[position];
            buffer.push(if buffer.is_empty() { b'[' } else { b',' });
            buffer.extend_from_slice(&scratch);
        }
    }
    let per_node = nodes
        .into_iter()
        .zip(buffers)
        .filter(|(_, buffer)| !buffer.is_empty())
        .map(|(node, mut buffer)| {
            buffer.push(b']');
            (node, Bytes::from(buffer))
        })
        .collect();
    Ok(RoutedBatch { per_node, shards, documents: count, ids })
}
