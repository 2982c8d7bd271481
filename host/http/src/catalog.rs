//! Index metadata lookups shared by the routes.

use miroir_store::{IndexMeta, StoreError};
use miroir_types::{ApiError, IndexUid};
use time::OffsetDateTime;

use crate::error::{HttpError, HttpResult};
use crate::AppState;

/// Validates an index uid from a path.
pub fn check_uid(uid: &str) -> HttpResult<IndexUid> {
    IndexUid::new(uid).map_err(|e| HttpError::Api(e.to_api_error()))
}

/// The metadata of `uid`, or `index_not_found`.
pub async fn existing(state: &AppState, uid: &str) -> HttpResult<IndexMeta> {
    state.store().get_index(uid).await?.ok_or_else(|| ApiError::index_not_found(uid).into())
}

/// The metadata of `uid`, recording a new index (S from configuration) when there is none, as
/// Meilisearch creates an index on its first write. Returns whether it was created.
pub async fn ensure(state: &AppState, uid: &str) -> HttpResult<(IndexMeta, bool)> {
    if let Some(meta) = state.store().get_index(uid).await? {
        return Ok((meta, false));
    }
    let now = OffsetDateTime::now_utc();
    let meta = IndexMeta::new(uid, state.config().shards, None, now);
    match state.store().create_index(&meta).await {
        Ok(()) => Ok((meta, true)),
        // Another request created it first: use theirs.
        Err(StoreError::Conflict(_)) => Ok((existing(state, uid).await?, false)),
        Err(error) => Err(error.into()),
    }
}
