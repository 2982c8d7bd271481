//! Index metadata for the read path, kept in memory for a moment.
//!
//! Every search needs its index's shard count, primary key and settings version. Reading them
//! from the task store on every search costs a store round trip (a blocking SQLite call, a Redis
//! request) that is a large part of what Miroir adds to a search. Reads take them from here:
//! an entry is trusted for [`FRESH_FOR`], then read again, and this instance forgets an entry
//! as soon as it changes the index itself (settings committed, index deleted). Changes made
//! through another instance are seen within [`FRESH_FOR`]; writes always read the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use miroir_store::IndexMeta;
use miroir_types::ApiError;

use crate::error::HttpResult;
use crate::AppState;

/// How long an entry is used before the store is asked again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// Recently read index metadata, by uid.
#[derive(Debug, Default)]
pub struct ReadCatalog {
    entries: Mutex<HashMap<String, (Instant, Arc<IndexMeta>)>>,
}

impl ReadCatalog {
    fn fresh(&self, uid: &str) -> Option<Arc<IndexMeta>> {
        let entries = self.entries.lock().expect("read catalog lock");
        let (read_at, meta) = entries.get(uid)?;
        (read_at.elapsed() < FRESH_FOR).then(|| Arc::clone(meta))
    }

    fn keep(&self, meta: Arc<IndexMeta>) {
        let mut entries = self.entries.lock().expect("read catalog lock");
        entries.insert(meta.uid.clone(), (Instant::now(), meta));
    }

    /// Drops what is known of `uid`: the next read asks the store.
    pub fn forget(&self, uid: &str) {
        self.entries.lock().expect("read catalog lock").remove(uid);
    }
}

/// The metadata of `uid` for a read, or `index_not_found` (never remembered, so an index
/// created meanwhile is found at once).
pub async fn index_for_read(state: &AppState, uid: &str) -> HttpResult<Arc<IndexMeta>> {
    if let Some(meta) = state.read_catalog().fresh(uid) {
        return Ok(meta);
    }
    let meta =
        state.catalog().get_index(uid).await?.ok_or_else(|| ApiError::index_not_found(uid))?;
    let meta = Arc::new(meta);
    state.read_catalog().keep(Arc::clone(&meta));
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    #[test]
    fn entries_are_kept_until_forgotten() {
        let catalog = ReadCatalog::default();
        assert!(catalog.fresh("books").is_none());
        catalog.keep(Arc::new(IndexMeta::new("books", 8, None, OffsetDateTime::now_utc())));
        assert_eq!(catalog.fresh("books").map(|m| m.shard_count), Some(8));
        catalog.forget("books");
        assert!(catalog.fresh("books").is_none());
    }
}
