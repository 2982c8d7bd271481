//! Logical backups: every document of an index, streamed as NDJSON, and the index's description
//! (uid, primary key, settings) to restore it with.
//!
//! - `GET /_miroir/indexes/{uid}/documents/export` (also at `/_indexes/{uid}/documents/export`,
//!   the operator's guide's path): one document per line, bookkeeping stripped, in the stable
//!   shard-major order of document browsing, fetched [`PAGE`] documents at a time so memory stays
//!   flat whatever the index size. Each document appears exactly once when no write runs during
//!   the export. An export that cannot be complete (a shard without an answering replica, a node
//!   error midway) ends the stream early with an error, so a client never mistakes it for whole.
//! - `GET /_miroir/indexes/{uid}/export/settings`: `{"uid", "primaryKey", "settings"}`.
//!
//! Both are admin routes (the admin key, like every `/_miroir/*` route).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::body::RawBody;
use crate::catalog::check_read_uid;
use crate::error::{HttpError, HttpResult};
use crate::read_catalog::index_for_read;
use crate::AppState;

/// Documents fetched from the cluster per page.
pub const PAGE: usize = 1000;

/// `GET /_miroir/indexes/{uid}/documents/export`: NDJSON, every document once.
pub async fn export_documents(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> HttpResult<Response> {
    check_read_uid(&uid)?;
    index_for_read(&state, &uid).await?;
    // The first page is read before answering, so a missing index or an unavailable shard is a
    // proper error status rather than a cut stream.
    let first = page(&state, &caller, &uid, 0).await?;
    let stream = futures_util::stream::unfold(
        Some((state, caller, uid, 0usize, Some(first))),
        |cursor| async move {
            let (state, caller, uid, offset, ready) = cursor?;
            let documents = match ready {
                Some(documents) => documents,
                None => match page(&state, &caller, &uid, offset).await {
                    Ok(documents) => documents,
                    Err(error) => {
                        tracing::warn!(index = %uid, offset, %error, "export stopped");
                        let failure = std::io::Error::other(error.to_string());
                        return Some((Err(failure), None));
                    }
                },
            };
            if documents.is_empty() {
                return None;
            }
            let next = offset + documents.len();
            let more = documents.len() == PAGE;
            let mut lines = Vec::with_capacity(documents.len() * 128);
            for document in &documents {
                serde_json::to_writer(&mut lines, document).expect("a JSON value serializes");
                lines.push(b'\n');
            }
            let cursor = more.then_some((state, caller, uid, next, None));
            Some((Ok::<Bytes, std::io::Error>(Bytes::from(lines)), cursor))
        },
    );
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

/// One page of documents from `offset`, through the document browse every client uses; an
/// error when the page is partial.
async fn page(
    state: &AppState,
    caller: &Caller,
    uid: &str,
    offset: usize,
) -> HttpResult<Vec<Value>> {
    let body = serde_json::to_vec(&json!({ "offset": offset, "limit": PAGE }))
        .expect("a JSON value serializes");
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let response = crate::documents::browse_post(
        State(state.clone()),
        Extension(caller.clone()),
        Path(uid.to_owned()),
        headers,
        RawBody(Bytes::from(body)),
    )
    .await?;
    if let Some(missing) = response.headers().get(crate::fanout::DEGRADED) {
        return Err(HttpError::api(
            miroir_types::ErrorCode::MiroirShardUnavailable,
            format!(
                "The export of `{uid}` cannot be complete: {} have no replica answering.",
                missing.to_str().unwrap_or("some shards")
            ),
        ));
    }
    let mut page = json_of(response).await?;
    match page["results"].take() {
        Value::Array(documents) => Ok(documents),
        _ => Ok(Vec::new()),
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
