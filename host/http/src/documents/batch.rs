//! Turning a payload's documents into one batch per node: primary key resolution, id
//! validation, the shard of every document, and the `_miroir_shard` bookkeeping field. The
//! documents are not rebuilt: each node's batch is the client's own text of its documents, each
//! with the shard marker put in front of its fields, and a large document is sent as a slice of
//! the client's body rather than copied.
//!
//! This is the hot part of the write path; `benches/route_batch.rs` measures it against a plain
//! parse and serialize of the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use bytes::Bytes;
use miroir_cluster::{shard_of, Assignment, NodeBody};
use miroir_types::{ApiError, ErrorCode, NodeId, ShardId};
use serde_json::Value;

use crate::bookkeeping::SHARD_FIELD;
use crate::documents::parse::{Document, Format, ParseError};
use crate::documents::raw;

/// A payload's documents: its bytes and where each document is in them ([`raw::locate`]).
#[derive(Debug, Clone)]
pub struct Payload {
    /// The body (a CSV payload converted to a JSON array).
    pub bytes: Bytes,
    /// Each document's object.
    pub documents: Vec<Range<usize>>,
}

impl Payload {
    /// Finds the documents of `body` in `format`; a CSV payload is converted to a JSON array
    /// first (its typed columns decide each value's type).
    pub fn read(body: Bytes, format: Format, csv_delimiter: u8) -> Result<Payload, ParseError> {
        let bytes = match format {
            Format::Csv => {
                let documents = crate::documents::parse::parse(&body, format, csv_delimiter)?;
                let array = serde_json::to_vec(&documents)
                    .map_err(|e| ParseError::new(format, e.to_string()))?;
                Bytes::from(array)
            }
            Format::Json | Format::Ndjson => body,
        };
        let format = if format == Format::Csv { Format::Json } else { format };
        let documents = raw::locate(&bytes, format)?;
        Ok(Payload { bytes, documents })
    }

    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// The text of document `i`.
    pub fn text(&self, i: usize) -> &[u8] {
        &self.bytes[self.documents[i].clone()]
    }

    /// The first document, whole (primary key inference reads its fields in order).
    pub fn first(&self) -> Option<Document> {
        (!self.is_empty()).then(|| raw::document(self.text(0)))
    }
}

/// Refuses documents carrying a reserved (`_miroir_*`) field.
pub fn check_reserved(payload: &Payload) -> Result<(), ApiError> {
    for i in 0..payload.len() {
        let scanned = raw::scan(payload.text(i), None)
            .map_err(|e| ApiError::new(ErrorCode::MalformedPayload, e.to_string()))?;
        if let Some(field) = scanned.reserved {
            return Err(ApiError::reserved_field(&field));
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
    first: Option<&Document>,
) -> PrimaryKey {
    if let Some(key) = index_key.or(query_key) {
        return PrimaryKey::Known(key.to_owned());
    }
    let Some(first) = first else { return PrimaryKey::Missing };
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
    pub per_node: BTreeMap<NodeId, NodeBody>,
    /// The shards the batch touches (quorum is checked on these).
    pub shards: BTreeSet<ShardId>,
    /// How many documents were routed.
    pub documents: usize,
    /// The documents' ids by shard, to undo the batch on nodes that took it when it is refused.
    pub ids: BTreeMap<ShardId, Vec<String>>,
}

/// A document at least this long is sent as a slice of the client's body; a shorter one is
/// copied (a slice costs a few pointers, too much for small documents).
const SLICE_FROM: usize = 256;

/// Validates every document's id, puts `_miroir_shard` in front of its fields (see
/// [`crate::bookkeeping::shard_marker`]), and splits the documents by target node (every
/// group's owners of the document's shard). A document error is returned as Meilisearch reports
/// it in a failed task.
pub fn route(
    payload: &Payload,
    primary_key: &str,
    assignment: &Assignment,
) -> Result<RoutedBatch, ApiError> {
    let shard_count = assignment.shards();
    // Owner lists per shard, resolved once: position in `nodes` of every target.
    let mut nodes: Vec<NodeId> = Vec::new();
    let mut targets: Vec<Option<Vec<usize>>> = vec![None; shard_count as usize];
    let mut batches: Vec<NodeBatch> = Vec::new();
    let mut shards = BTreeSet::new();
    let mut ids: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
    let mut opening = Vec::with_capacity(64);
    for (i, range) in payload.documents.iter().enumerate() {
        let text = payload.text(i);
        let scanned = raw::scan(text, Some(primary_key))
            .map_err(|e| ApiError::new(ErrorCode::MalformedPayload, e.to_string()))?;
        let id = match scanned.id {
            None => {
                let shown = serde_json::to_string(&raw::document(text)).unwrap_or_default();
                return Err(ApiError::new(
                    ErrorCode::MissingDocumentId,
                    format!("Document doesn't have a `{primary_key}` attribute: `{shown}`."),
                ));
            }
            Some(value) => document_id(&value).ok_or_else(|| invalid_document_id(&value))?,
        };
        let shard = shard_of(&id, shard_count);
        shards.insert(shard);
        ids.entry(shard).or_default().push(id);
        let slot = &mut targets[shard.get() as usize];
        if slot.is_none() {
            let mut positions = Vec::new();
            for (_, owners) in assignment.write_targets(shard) {
                for owner in owners {
                    let position = match nodes.iter().position(|n| n == owner) {
                        Some(p) => p,
                        None => {
                            nodes.push(owner.clone());
                            batches.push(NodeBatch::default());
                            nodes.len() - 1
                        }
                    };
                    positions.push(position);
                }
            }
            *slot = Some(positions);
        }
        // `{"_miroir_shard":{"s<N>":null}` then the document's own fields (after its `{`).
        let fields = range.start + 1..range.end;
        let empty =
            payload.bytes[fields.clone()].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        opening.clear();
        opening.extend_from_slice(b"{\"");
        opening.extend_from_slice(SHARD_FIELD.as_bytes());
        opening.extend_from_slice(format!("\":{{\"s{}\":null}}", shard.get()).as_bytes());
        opening.push(if empty { b'}' } else { b',' });
        for &position in slot.iter().flatten() {
            let batch = &mut batches[position];
            batch.copy(if batch.is_empty() { b"[" } else { b"," });
            batch.copy(&opening);
            if empty {
                continue;
            }
            if fields.len() >= SLICE_FROM {
                batch.slice(payload.bytes.slice(fields.clone()));
            } else {
                batch.copy(&payload.bytes[fields.clone()]);
            }
        }
    }
    let per_node = nodes
        .into_iter()
        .zip(batches)
        .filter(|(_, batch)| !batch.is_empty())
        .map(|(node, batch)| (node, batch.finish()))
        .collect();
    Ok(RoutedBatch { per_node, shards, documents: payload.len(), ids })
}

/// One node's JSON array being built: copied bytes and slices of the client's body.
#[derive(Debug, Default)]
struct NodeBatch {
    parts: Vec<Bytes>,
    copied: Vec<u8>,
}

impl NodeBatch {
    fn is_empty(&self) -> bool {
        self.parts.is_empty() && self.copied.is_empty()
    }

    fn copy(&mut self, bytes: &[u8]) {
        self.copied.extend_from_slice(bytes);
    }

    fn slice(&mut self, slice: Bytes) {
        if !self.copied.is_empty() {
            self.parts.push(Bytes::from(std::mem::take(&mut self.copied)));
        }
        self.parts.push(slice);
    }

    fn finish(mut self) -> NodeBody {
        self.copied.push(b']');
        self.parts.push(Bytes::from(self.copied));
        NodeBody::from_parts("application/json", self.parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use miroir_cluster::Topology;
    use miroir_types::GroupId;
    use serde_json::json;

    fn assignment(nodes: usize, rf: usize) -> Assignment {
        let group = GroupId::new("g").expect("group");
        let nodes = (0..nodes).map(|i| (NodeId::new(format!("n{i}")).expect("id"), group.clone()));
        Assignment::new(&Topology::new(nodes, rf).expect("topology"), 8)
    }

    #[test]
    fn each_owner_gets_its_documents_as_sent_with_the_shard_marker_in_front() {
        let long = "x".repeat(2 * SLICE_FROM);
        let documents = json!([
            {"id": "a", "title": "short"},
            {"id": 7, "body": long, "nested": {"k": [1, 2]}},
            {"id": "b", "text": "caf\u{e9} \"quoted\""},
        ]);
        let body = Bytes::from(serde_json::to_vec_pretty(&documents).expect("json"));
        let payload = Payload::read(body, Format::Json, b',').expect("payload");
        let assignment = assignment(3, 2);
        let routed = route(&payload, "id", &assignment).expect("routed");
        let mut copies = 0;
        for (node, batch) in &routed.per_node {
            let sent: Vec<Value> = serde_json::from_slice(&batch.to_bytes()).expect("a JSON array");
            for document in sent {
                let id = document_id(&document["id"]).expect("id");
                let shard = shard_of(&id, 8);
                assert!(assignment.write_targets(shard).any(|(_, o)| o.contains(node)));
                assert_eq!(document[SHARD_FIELD], crate::bookkeeping::shard_marker(shard));
                let mut original = documents
                    .as_array()
                    .expect("array")
                    .iter()
                    .find(|d| document_id(&d["id"]) == Some(id.clone()))
                    .expect("sent by the client")
                    .clone();
                original[SHARD_FIELD] = crate::bookkeeping::shard_marker(shard);
                assert_eq!(document, original);
                copies += 1;
            }
        }
        assert_eq!(copies, 3 * 2, "every document on its two owners");
        assert!(routed.per_node.values().any(|b| b.len() > 2 * SLICE_FROM));
    }

    #[test]
    fn document_errors_are_one_nodes() {
        let assignment = assignment(1, 1);
        let read = |text: &str| Payload::read(Bytes::from(text.to_owned()), Format::Json, b',');
        let missing =
            route(&read(r#"[{"id":1},{"title":"t"}]"#).expect("payload"), "id", &assignment)
                .expect_err("no id");
        assert_eq!(missing.code(), ErrorCode::MissingDocumentId);
        assert!(missing.message().contains(r#"`{"title":"t"}`"#), "{}", missing.message());
        let invalid = route(&read(r#"{"id":"a b"}"#).expect("payload"), "id", &assignment)
            .expect_err("bad id");
        assert_eq!(invalid.code(), ErrorCode::InvalidDocumentId);
        let reserved = check_reserved(&read(r#"[{"id":1,"_miroir_shard":2}]"#).expect("payload"))
            .expect_err("reserved");
        assert_eq!(reserved.code(), ErrorCode::MiroirReservedField);
        let empty = route(&read(r#"[{}]"#).expect("payload"), "id", &assignment);
        assert!(empty.is_err());
    }
}
