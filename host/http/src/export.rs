//! Logical backups: every document of an index, streamed as NDJSON, and the index's description
//! (uid, primary key, settings) to restore it with.
//!
//! - `GET /_miroir/indexes/{uid}/documents/export` (also at `/_indexes/{uid}/documents/export`,
//!   the operator's guide's path): one document per line, bookkeeping stripped, shard by shard
//!   (shard 0 first) and in one node's order within a shard, a stable order.
//!
//!   Each shard is read from one of its replicas: once that node applied every write of the
//!   index it had received, the shard's primary keys are listed in one request (one node's
//!   consistent view), then its documents are fetched by id, [`PAGE`] at a time. Nothing is read
//!   by offset, so writes during the export shift nothing: a document present for the whole
//!   export appears exactly once; one written or deleted during it may or may not appear (a
//!   change data capture consumer gets its event after `head`); every write acknowledged
//!   before the export started is in it. Memory holds one shard's primary keys and one page,
//!   whatever the index size. An export that cannot be complete (a shard without an answering
//!   replica, a node error midway) ends the stream early with an error, so a client never
//!   mistakes it for whole.
//! - `GET /_miroir/indexes/{uid}/export/settings`: `{"uid", "primaryKey", "settings"}`.
//!
//! Both are admin routes (the admin key, like every `/_miroir/*` route).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use miroir_cluster::NodeAuth;
use miroir_types::{NodeId, ShardId};

use crate::auth::Caller;
use crate::bookkeeping::shard_filter;
use crate::catalog::check_read_uid;
use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::AppState;

/// Documents fetched from a node per request.
pub const PAGE: usize = 1000;

/// How long a node may take to apply the writes of the index it received before its shard is
/// read.
const APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /_miroir/indexes/{uid}/documents/export`: NDJSON, every document once.
pub async fn export_documents(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    let meta = index_for_read(&state, &uid).await?;
    let mut export = Export {
        state,
        caller,
        uid,
        primary_key: meta.primary_key.clone(),
        shard_count: meta.shard_count,
        next_shard: 0,
        shard: ShardId::new(0),
        node: None,
        keys: Vec::new(),
        next_key: 0,
    };
    // The first documents are read before answering, so a missing index or an unavailable shard
    // is a proper error status rather than a cut stream.
    let first = export.next_page().await?;
    let stream = futures_util::stream::unfold(Some((export, first)), |cursor| async move {
        let (mut export, ready) = cursor?;
        let documents = match ready {
            Some(documents) => documents,
            None => match export.next_page().await {
                Ok(Some(documents)) => documents,
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(index = %export.uid, shard = export.shard.get(), %error,
                        "export stopped");
                    let failure = std::io::Error::other(error.to_string());
                    return Some((Err(failure), None));
                }
            },
        };
        let mut lines = Vec::with_capacity(documents.len() * 128);
        for document in &documents {
            serde_json::to_writer(&mut lines, document).expect("a JSON value serializes");
            lines.push(b'\n');
        }
        Some((Ok::<Bytes, std::io::Error>(Bytes::from(lines)), Some((export, None))))
    });
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

/// `GET /_miroir/indexes/{uid}/export/settings`: what re-creates the index.
pub async fn export_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Json<Value>> {
    check_read_uid(&uid)?;
    let meta = index_for_read(&state, &uid).await?;
    let settings =
        crate::settings::get_all(State(state.clone()), Extension(caller), Path(uid.clone()))
            .await?;
    let settings = json_of(settings).await?;
    Ok(Json(json!({ "uid": uid, "primaryKey": meta.primary_key, "settings": settings })))
}

/// An export under way: the shard being read and its primary keys.
struct Export {
    state: AppState,
    caller: Caller,
    uid: String,
    /// `None` while the index never had a document.
    primary_key: Option<String>,
    shard_count: u32,
    /// The next shard to list.
    next_shard: u32,
    /// The shard whose `keys` are being read.
    shard: ShardId,
    /// The replica that listed `keys`, asked first for their documents.
    node: Option<NodeId>,
    /// The primary keys `shard` held when it was listed, in the node's order.
    keys: Vec<String>,
    /// The first of `keys` not read yet.
    next_key: usize,
}

impl Export {
    /// The next documents, bookkeeping stripped; `None` once every shard was read.
    async fn next_page(&mut self) -> HttpResult<Option<Vec<Value>>> {
        let Some(pk) = self.primary_key.clone() else { return Ok(None) };
        loop {
            if self.next_key < self.keys.len() {
                let end = (self.next_key + PAGE).min(self.keys.len());
                let mut documents = self.documents(self.next_key..end).await?;
                self.next_key = end;
                if documents.is_empty() {
                    // Deleted since the shard was listed.
                    continue;
                }
                documents.iter_mut().for_each(crate::documents::strip_document);
                return Ok(Some(documents));
            }
            if self.next_shard >= self.shard_count {
                return Ok(None);
            }
            self.shard = ShardId::new(self.next_shard);
            self.next_shard += 1;
            self.list(&pk).await?;
        }
    }

    /// Lists the primary keys of the next shard in one request (one node's consistent view:
    /// no offset to shift under concurrent deletions), once the node applied every write of
    /// the index it had received.
    async fn list(&mut self, pk: &str) -> HttpResult<()> {
        self.keys = Vec::new();
        self.next_key = 0;
        let filter = shard_filter(self.shard);
        let count = json!({ "filter": filter, "fields": [pk], "limit": 0 });
        let (node, answer) = self.fetch(None, &count).await?;
        applied_received_writes(&self.state, &node, &self.uid).await?;
        let total = answer["total"].as_u64().unwrap_or(0) as usize;
        // Room for the documents added since the count; asked again with more when full.
        let mut limit = total + total / 4 + PAGE;
        loop {
            let body = json!({ "filter": filter, "fields": [pk], "offset": 0, "limit": limit });
            let (node, mut answer) = self.fetch(Some(&node), &body).await?;
            let Value::Array(documents) = answer["results"].take() else {
                return Err(HttpError::Internal(format!("node `{node}` listed no results")));
            };
            if documents.len() < limit {
                self.keys = documents
                    .into_iter()
                    .map(|mut document| match document[pk].take() {
                        Value::String(text) => text,
                        other => other.to_string(),
                    })
                    .collect();
                self.node = Some(node);
                return Ok(());
            }
            limit *= 2;
        }
    }

    /// The documents of `keys[range]` still in the shard, in the node's order.
    async fn documents(&mut self, range: std::ops::Range<usize>) -> HttpResult<Vec<Value>> {
        let ids = &self.keys[range];
        let body = json!({ "ids": ids, "filter": shard_filter(self.shard), "limit": ids.len() });
        let node = self.node.clone();
        let (node, mut answer) = self.fetch(node.as_ref(), &body).await?;
        self.node = Some(node);
        match answer["results"].take() {
            Value::Array(documents) => Ok(documents),
            _ => Ok(Vec::new()),
        }
    }

    /// `body` as a documents fetch of the current shard, from `node` first, else a replica.
    async fn fetch(&self, node: Option<&NodeId>, body: &Value) -> HttpResult<(NodeId, Value)> {
        let shard = self.shard;
        crate::documents::browse::fetch_from_shard(
            &self.state,
            &self.caller,
            &self.uid,
            self.shard_count,
            shard,
            node,
            body,
        )
        .await?
        .ok_or_else(|| {
            HttpError::api(
                miroir_types::ErrorCode::MiroirShardUnavailable,
                format!(
                    "The export of `{}` cannot be complete: shard {} has no replica answering.",
                    self.uid,
                    shard.get()
                ),
            )
        })
    }
}

/// Waits until `node` applied every task of `uid` it had received when called (at most
/// [`APPLY_WAIT`]): the export then holds every write acknowledged before it started.
async fn applied_received_writes(state: &AppState, node: &NodeId, uid: &str) -> HttpResult<()> {
    let client = state.client(node)?;
    let path = format!("/tasks?indexUids={uid}&limit=1");
    let response = client.send(Method::GET, &path, None, NodeAuth::NodeKey).await?;
    let Some(last) = response.json()["results"][0]["uid"].as_u64() else { return Ok(()) };
    let path = format!("/tasks/{last}");
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        let response = client.send(Method::GET, &path, None, NodeAuth::NodeKey).await?;
        let status = response.json()["status"].as_str().unwrap_or("").to_owned();
        if !response.is_success() || !matches!(status.as_str(), "enqueued" | "processing") {
            return Ok(());
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(HttpError::api(
                miroir_types::ErrorCode::MiroirTimeout,
                format!("node `{node}` kept tasks of `{uid}` in flight for {APPLY_WAIT:?}"),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// The JSON body of one of Miroir's own answers.
async fn json_of(response: Response) -> HttpResult<Value> {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|error| HttpError::Internal(format!("cannot read an answer: {error}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| HttpError::Internal(format!("cannot parse an answer: {error}")))
}
