//! One index held in memory: its documents in insertion order, its settings, and the order in
//! which fields first appeared (Meilisearch's field ids, which decide what `*` means).

use indexmap::IndexMap;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::settings::Settings;

/// A document as stored: a JSON object.
pub type Document = Map<String, Value>;

#[derive(Debug, Clone)]
pub struct Index {
    pub uid: String,
    pub primary_key: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub settings: Settings,
    /// Documents by their id (the primary key value as a string), in insertion order; a
    /// replaced document keeps its place, as an internal document id does in Meilisearch.
    pub documents: IndexMap<String, Document>,
    /// Every top-level field name in the order it was first seen.
    pub field_order: Vec<String>,
}

impl Index {
    pub fn new(uid: &str, primary_key: Option<String>, now: OffsetDateTime) -> Self {
        Self {
            uid: uid.to_string(),
            primary_key,
            created_at: now,
            updated_at: now,
            settings: Settings::default(),
            documents: IndexMap::new(),
            field_order: Vec::new(),
        }
    }

    /// Record the fields of a document so that `*` lists them in first-appearance order.
    pub fn note_fields(&mut self, doc: &Document) {
        for key in doc.keys() {
            if !self.field_order.iter().any(|f| f == key) {
                self.field_order.push(key.clone());
            }
        }
    }

    /// The searchable attributes in priority order, `*` expanded to every known field.
    pub fn searchable_fields(&self) -> Vec<String> {
        let configured = &self.settings.searchable_attributes;
        if configured.iter().any(|a| a == "*") {
            self.field_order.clone()
        } else {
            configured.clone()
        }
    }

    /// `fieldDistribution`: how many documents hold each field.
    pub fn field_distribution(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for doc in self.documents.values() {
            for key in doc.keys() {
                *out.entry(key.clone()).or_insert(0) += 1;
            }
        }
        out
    }
}

/// Whether a string is a valid index uid (alphanumeric, `-`, `_`, at most 400 bytes: the
/// message says 512, but Meilisearch refuses 401 bytes).
pub fn is_valid_index_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 400
        && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
