//! The copy of the index catalog Miroir keeps on the nodes, so that losing the task store loses
//! nothing it needs to route and answer correctly.
//!
//! Every node holds a reserved index, [`CATALOG_INDEX`], that no client ever sees. It holds one
//! document per index Miroir ever recorded — its metadata ([`IndexMeta`]) while the index
//! lives, a tombstone once it is deleted — and the task-uid high-water marks: a task uid is only
//! handed out below a mark that is already on the nodes (see `store_recovery`). Documents:
//!
//! | `id` | fields |
//! |---|---|
//! | `index-{uid}` | `kind: "index"`, `uid`, `deleted`, `meta` (the [`IndexMeta`] as a JSON string, so the node indexes one text field, not the settings' structure), `changedAt` (Unix nanoseconds as a string: JSON numbers lose precision past 2^53) |
//! | `tasks-{mark}` | `kind: "taskMark"`, `mark` |
//!
//! Writes go to every node; a write counts once one node accepted it (nodes persist enqueued
//! tasks). Reads ask every node, wait until none has a catalog write pending, and merge: per
//! index the latest `changedAt` wins; the mark is the largest of all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::Method;
use futures_util::future::join_all;
use miroir_cluster::{NodeAuth, NodeBody, NodeClient};
use miroir_store::IndexMeta;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The reserved index on every node.
pub const CATALOG_INDEX: &str = "_miroir_catalog";

/// The prefix of index uids Miroir reserves for itself; clients can neither see nor write them.
pub const RESERVED_INDEX_PREFIX: &str = "_miroir_";

/// How many catalog documents one read asks for.
const PAGE: usize = 1000;

/// How long a read waits for the nodes' pending catalog writes before reading anyway.
const PENDING_WAIT: Duration = Duration::from_secs(5);

/// Whether `uid` names one of Miroir's own indexes.
pub fn is_reserved_index(uid: &str) -> bool {
    uid.starts_with(RESERVED_INDEX_PREFIX)
}

/// Why the catalog could not be read from or written to the nodes.
#[derive(Debug, thiserror::Error)]
pub enum NodeCatalogError {
    /// No node answered (or accepted the write).
    #[error("no node {0}")]
    NoNode(&'static str),
    /// A document could not be encoded.
    #[error("cannot encode a catalog document: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What one index's latest catalog document says.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The index lives, with this metadata.
    Live(Box<IndexMeta>),
    /// The index was deleted.
    Deleted,
}

/// The catalog as the nodes hold it, merged over every node that answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeCatalog {
    /// Index uid → its latest entry and when it was written (Unix nanoseconds).
    pub indexes: BTreeMap<String, (i128, Entry)>,
    /// The highest task-uid high-water mark published.
    pub task_mark: u64,
    /// How many nodes answered.
    pub nodes_read: usize,
    /// The latest fleet document published (see [`fleet_document`]) and when it was written.
    pub fleet: Option<(i128, Value)>,
}

impl NodeCatalog {
    /// The live indexes.
    pub fn live(&self) -> impl Iterator<Item = &IndexMeta> {
        self.indexes.values().filter_map(|(_, entry)| match entry {
            Entry::Live(meta) => Some(meta.as_ref()),
            Entry::Deleted => None,
        })
    }

    fn absorb(&mut self, doc: &Value) {
        match doc["kind"].as_str() {
            Some("fleet") => {
                let at: i128 = doc["changedAt"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                let Some(fleet) = doc["fleet"].as_str().and_then(|f| serde_json::from_str(f).ok())
                else {
                    return;
                };
                if self.fleet.as_ref().is_none_or(|(known, _)| at > *known) {
                    self.fleet = Some((at, fleet));
                }
            }
            Some("taskMark") => {
                self.task_mark = self.task_mark.max(doc["mark"].as_u64().unwrap_or(0));
            }
            Some("index") => {
                let Some(uid) = doc["uid"].as_str() else { return };
                let at: i128 = doc["changedAt"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                let entry = if doc["deleted"].as_bool().unwrap_or(false) {
                    Entry::Deleted
                } else {
                    let Some(meta) = doc["meta"]
                        .as_str()
                        .and_then(|m| serde_json::from_str::<IndexMeta>(m).ok())
                    else {
                        tracing::warn!(index = uid, "unreadable catalog document on a node");
                        return;
                    };
                    Entry::Live(Box::new(meta))
                };
                let newer = self.indexes.get(uid).is_none_or(|(known, _)| at > *known);
                if newer {
                    self.indexes.insert(uid.to_owned(), (at, entry));
                }
            }
            _ => {}
        }
    }
}

fn nanos(at: OffsetDateTime) -> String {
    at.unix_timestamp_nanos().to_string()
}

/// The document recording `meta`.
pub fn index_document(meta: &IndexMeta) -> Result<Value, NodeCatalogError> {
    Ok(json!({
        "id": format!("index-{}", meta.uid),
        "kind": "index",
        "uid": meta.uid,
        "deleted": false,
        "meta": serde_json::to_string(meta)?,
        "changedAt": nanos(OffsetDateTime::now_utc()),
    }))
}

/// The tombstone of a deleted index.
pub fn tombstone(uid: &str) -> Value {
    json!({
        "id": format!("index-{uid}"),
        "kind": "index",
        "uid": uid,
        "deleted": true,
        "meta": Value::Null,
        "changedAt": nanos(OffsetDateTime::now_utc()),
    })
}

/// The document keeping a copy of the fleet (`fleet` is its stored JSON), so a Miroir that lost
/// its task store finds the nodes added and removed since the configuration was written.
pub fn fleet_document(fleet: &Value) -> Result<Value, NodeCatalogError> {
    Ok(json!({
        "id": "fleet",
        "kind": "fleet",
        "fleet": serde_json::to_string(fleet)?,
        "changedAt": nanos(OffsetDateTime::now_utc()),
    }))
}

/// The document publishing a task-uid high-water mark.
pub fn mark_document(mark: u64) -> Value {
    json!({ "id": format!("tasks-{mark}"), "kind": "taskMark", "mark": mark })
}

/// Writes `documents` to the catalog of every node; returns how many nodes accepted them.
/// `NoNode` when none did.
pub async fn write<'a>(
    nodes: impl IntoIterator<Item = &'a NodeClient>,
    documents: &[Value],
) -> Result<usize, NodeCatalogError> {
    let body = bytes::Bytes::from(serde_json::to_vec(documents)?);
    let path = format!("/indexes/{CATALOG_INDEX}/documents?primaryKey=id");
    let sends = nodes.into_iter().map(|client| {
        let body = NodeBody::json(body.clone());
        let path = path.clone();
        async move {
            match client.send(Method::POST, &path, Some(body), NodeAuth::NodeKey).await {
                Ok(r) if r.is_success() => true,
                Ok(r) => {
                    tracing::warn!(node = %client.id(), status = r.status, "a node refused a catalog write");
                    false
                }
                Err(error) => {
                    tracing::warn!(%error, "a node missed a catalog write");
                    false
                }
            }
        }
    });
    let accepted = join_all(sends).await.into_iter().filter(|ok| *ok).count();
    if accepted == 0 {
        return Err(NodeCatalogError::NoNode("accepted the catalog write"));
    }
    Ok(accepted)
}

/// Reads and merges the catalog of every node that answers. `NoNode` when none did.
pub async fn read<'a>(
    nodes: impl IntoIterator<Item = &'a NodeClient>,
) -> Result<NodeCatalog, NodeCatalogError> {
    let reads = nodes.into_iter().map(read_one);
    let mut catalog = NodeCatalog::default();
    for docs in join_all(reads).await.into_iter().flatten() {
        catalog.nodes_read += 1;
        for doc in &docs {
            catalog.absorb(doc);
        }
    }
    if catalog.nodes_read == 0 {
        return Err(NodeCatalogError::NoNode("answered a catalog read"));
    }
    Ok(catalog)
}

/// One node's catalog documents, once its pending catalog writes are done; `None` if the node
/// does not answer.
async fn read_one(client: &NodeClient) -> Option<Vec<Value>> {
    let pending = format!("/tasks?indexUids={CATALOG_INDEX}&statuses=enqueued,processing&limit=1");
    let deadline = Instant::now() + PENDING_WAIT;
    loop {
        let answer = client.send(Method::GET, &pending, None, NodeAuth::NodeKey).await.ok()?;
        if !answer.is_success() {
            return None;
        }
        let busy = answer.json()["results"].as_array().is_some_and(|r| !r.is_empty());
        if !busy || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut docs = Vec::new();
    loop {
        let path = format!("/indexes/{CATALOG_INDEX}/documents?limit={PAGE}&offset={}", docs.len());
        let answer = client.send(Method::GET, &path, None, NodeAuth::NodeKey).await.ok()?;
        if answer.status == 404 {
            // No catalog yet: a node that never held an index.
            return Some(docs);
        }
        if !answer.is_success() {
            return None;
        }
        let page = answer.json()["results"].as_array().cloned().unwrap_or_default();
        let last = page.len() < PAGE;
        docs.extend(page);
        if last {
            return Some(docs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_document_of_an_index_wins_and_the_largest_mark() {
        let meta = IndexMeta::new("books", 7, Some("id".into()), OffsetDateTime::now_utc());
        let mut live = index_document(&meta).expect("encode");
        live["changedAt"] = json!("200");
        let mut dead = tombstone("books");
        dead["changedAt"] = json!("100");
        let mut catalog = NodeCatalog::default();
        for doc in [&live, &dead, &mark_document(20_000), &mark_document(10_000)] {
            catalog.absorb(doc);
        }
        assert_eq!(catalog.task_mark, 20_000);
        assert_eq!(catalog.live().map(|m| m.shard_count).collect::<Vec<_>>(), [7]);
        dead["changedAt"] = json!("300");
        catalog.absorb(&dead);
        assert_eq!(catalog.live().count(), 0, "a later deletion wins");
        let mut old = fleet_document(&json!({"nodes": ["a"]})).expect("encode");
        old["changedAt"] = json!("5");
        let mut new = fleet_document(&json!({"nodes": ["a", "b"]})).expect("encode");
        new["changedAt"] = json!("6");
        catalog.absorb(&new);
        catalog.absorb(&old);
        assert_eq!(catalog.fleet.map(|(_, f)| f), Some(json!({"nodes": ["a", "b"]})));
    }

    #[test]
    fn reserved_uids_are_miroirs() {
        assert!(is_reserved_index(CATALOG_INDEX));
        assert!(is_reserved_index("_miroir_anything"));
        assert!(!is_reserved_index("miroir"));
    }
}
