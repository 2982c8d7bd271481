//! Index metadata: the facts about an index that every Miroir instance must agree on.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::clock::serde_nanos;
use crate::{Fence, StoreResult};

/// What Miroir records about one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// The index uid.
    pub uid: String,
    /// The shard count `S`, fixed at creation.
    pub shard_count: u32,
    /// The primary key, once known.
    pub primary_key: Option<String>,
    /// Bumped on every committed settings change (`X-Miroir-Settings-Version`).
    pub settings_version: u64,
    /// The settings as clients wrote them (what `GET /indexes/{uid}/settings` answers): a JSON
    /// object of the fields set so far, `{}` on defaults.
    #[serde(default = "empty_object")]
    pub settings: serde_json::Value,
    /// Every document field in order of first appearance: what `*` means on a single node.
    #[serde(default)]
    pub fields: Vec<String>,
    /// When the index was created.
    #[serde(with = "serde_nanos")]
    pub created_at: OffsetDateTime,
    /// When the metadata last changed.
    #[serde(with = "serde_nanos")]
    pub updated_at: OffsetDateTime,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl IndexMeta {
    /// A new index's metadata: no settings written, no field seen yet.
    pub fn new(
        uid: impl Into<String>,
        shard_count: u32,
        primary_key: Option<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            uid: uid.into(),
            shard_count,
            primary_key,
            settings_version: 0,
            settings: empty_object(),
            fields: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// The index catalog.
#[async_trait]
pub trait IndexCatalog: Send + Sync {
    /// Records a new index. `Conflict` if an index with this uid exists.
    async fn create_index(&self, meta: &IndexMeta) -> StoreResult<()>;

    /// Inserts or replaces the metadata of `meta.uid`.
    async fn put_index(&self, meta: &IndexMeta) -> StoreResult<()>;

    /// The metadata of `uid`, if recorded.
    async fn get_index(&self, uid: &str) -> StoreResult<Option<IndexMeta>>;

    /// Every recorded index, sorted by uid.
    async fn list_indexes(&self) -> StoreResult<Vec<IndexMeta>>;

    /// Forgets `uid`; returns whether it was recorded.
    async fn delete_index(&self, uid: &str) -> StoreResult<bool>;

    /// Atomically increments the settings version of `uid` and sets `updated_at`; returns the
    /// new version. `NotFound` if the index is not recorded. With a `fence`, `Conflict` if the
    /// fence's token is no longer the latest issued for its lease (a deposed leader).
    async fn bump_settings_version(
        &self,
        uid: &str,
        now: OffsetDateTime,
        fence: Option<&Fence>,
    ) -> StoreResult<u64>;
}
