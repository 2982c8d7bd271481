//! Index metadata as the routes read and write it: the task store's catalog, kept in step with
//! the copy on the nodes ([`crate::node_catalog`]) and restored from it when the store lost it
//! ([`crate::store_recovery`]).

use miroir_store::{Fence, IndexMeta, NewTask, StoreError, StoreResult, TaskRecord};
use miroir_types::{ApiError, ErrorCode, IndexUid};
use time::OffsetDateTime;

use crate::error::{HttpError, HttpResult};
use crate::node_catalog::is_reserved_index;
use crate::store_recovery;
use crate::AppState;

/// The index catalog and the task sequence, through [`AppState::catalog`]: every change is
/// written to the store and then to the nodes' catalog; a lookup the store misses asks the nodes
/// (see [`store_recovery::on_miss`]); task uids stay under the mark published on the nodes.
pub struct Catalog<'a> {
    pub(crate) state: &'a AppState,
}

impl Catalog<'_> {
    /// The metadata of `uid`, restored from the nodes when the store lost it.
    pub async fn get_index(&self, uid: &str) -> HttpResult<Option<IndexMeta>> {
        if let Some(meta) = self.state.store().get_index(uid).await? {
            return Ok(Some(meta));
        }
        store_recovery::on_miss(self.state, uid).await
    }

    /// Every recorded index, sorted by uid.
    pub async fn list_indexes(&self) -> StoreResult<Vec<IndexMeta>> {
        self.state.store().list_indexes().await
    }

    /// Records a new index (`Conflict` if it exists), then on the nodes.
    pub async fn create_index(&self, meta: &IndexMeta) -> StoreResult<()> {
        self.state.store().create_index(meta).await?;
        store_recovery::publish_index(self.state, meta).await;
        Ok(())
    }

    /// Replaces the metadata of `meta.uid`, then on the nodes.
    pub async fn put_index(&self, meta: &IndexMeta) -> StoreResult<()> {
        self.state.store().put_index(meta).await?;
        store_recovery::publish_index(self.state, meta).await;
        Ok(())
    }

    /// Leaves the tombstone of `uid` on the nodes, then forgets it. Both happen between two
    /// rebuilds, and the tombstone first, so that no rebuild brings the index back.
    pub async fn delete_index(&self, uid: &str) -> StoreResult<bool> {
        let _no_rebuild = self.state.recovery().hold().await;
        store_recovery::publish_deletion(self.state, uid).await;
        self.state.store().delete_index(uid).await
    }

    /// Bumps the settings version of `uid` and writes the result to the nodes.
    pub async fn bump_settings_version(
        &self,
        uid: &str,
        now: OffsetDateTime,
        fence: Option<&Fence>,
    ) -> StoreResult<u64> {
        let version = self.state.store().bump_settings_version(uid, now, fence).await?;
        if let Some(meta) = self.state.store().get_index(uid).await? {
            store_recovery::publish_index(self.state, &meta).await;
        }
        Ok(version)
    }

    /// Records `task` under a uid no client has seen (see [`store_recovery::create_task`]).
    pub async fn create_task(&self, task: NewTask) -> HttpResult<TaskRecord> {
        Ok(store_recovery::create_task(self.state, task, None).await?.0)
    }

    /// [`Catalog::create_task`], appending `change` to the change log in the same store
    /// transaction when the store can: the record and the event's position when it did.
    pub async fn create_task_with_change(
        &self,
        task: NewTask,
        change: Option<miroir_store::ChangeEntry>,
    ) -> HttpResult<(TaskRecord, Option<u64>)> {
        store_recovery::create_task(self.state, task, change).await
    }
}

/// Validates an index uid from the path of a read: a reserved uid reads as an index that does
/// not exist.
pub fn check_read_uid(uid: &str) -> HttpResult<IndexUid> {
    let checked = check_uid(uid)?;
    if is_reserved_index(uid) {
        return Err(ApiError::index_not_found(uid).into());
    }
    Ok(checked)
}

/// Refuses writes to an index uid Miroir reserves for itself (`_miroir_*`).
pub fn check_not_reserved(uid: &str) -> HttpResult<()> {
    if is_reserved_index(uid) {
        return Err(HttpError::api(
            ErrorCode::MiroirReservedIndex,
            format!("Index `{uid}` is reserved by Miroir: index uids starting with `_miroir_` cannot be written."),
        ));
    }
    Ok(())
}

/// Validates an index uid from the path of a write: well-formed and not reserved.
pub fn check_write_uid(uid: &str) -> HttpResult<IndexUid> {
    let checked = check_uid(uid)?;
    check_not_reserved(uid)?;
    Ok(checked)
}

/// Validates an index uid from a path.
pub fn check_uid(uid: &str) -> HttpResult<IndexUid> {
    IndexUid::new(uid).map_err(|e| HttpError::Api(e.to_api_error()))
}

/// The metadata of `uid`, or `index_not_found`.
pub async fn existing(state: &AppState, uid: &str) -> HttpResult<IndexMeta> {
    state.catalog().get_index(uid).await?.ok_or_else(|| ApiError::index_not_found(uid).into())
}

/// The metadata of `uid`, recording a new index (S from configuration) when there is none, as
/// Meilisearch creates an index on its first write. Returns whether it was created.
pub async fn ensure(state: &AppState, uid: &str) -> HttpResult<(IndexMeta, bool)> {
    check_not_reserved(uid)?;
    if let Some(meta) = state.catalog().get_index(uid).await? {
        return Ok((meta, false));
    }
    let now = OffsetDateTime::now_utc();
    let meta = IndexMeta::new(uid, state.config().shards, None, now);
    match state.catalog().create_index(&meta).await {
        Ok(()) => Ok((meta, true)),
        // Another request created it first: use theirs.
        Err(StoreError::Conflict(_)) => Ok((existing(state, uid).await?, false)),
        Err(error) => Err(error.into()),
    }
}
