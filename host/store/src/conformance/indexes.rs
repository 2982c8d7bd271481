//! Cases for the index catalog.

use time::OffsetDateTime;

use super::StoreFactory;
use crate::prelude::*;
use crate::{IndexMeta, StoreError};

fn meta(uid: &str, shards: u32) -> IndexMeta {
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid date");
    IndexMeta::new(uid, shards, None, at)
}

/// Create refuses duplicates; put replaces; list is sorted; delete forgets.
pub async fn index_catalog_crud<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    assert!(store.list_indexes().await.expect("list an empty store").is_empty());
    store.create_index(&meta("movies", 64)).await.expect("create movies");
    store.create_index(&meta("books", 8)).await.expect("create books");
    let dup = store.create_index(&meta("movies", 4)).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(store.get_index("movies").await.expect("get"), Some(meta("movies", 64)));

    let mut movies = meta("movies", 64);
    movies.primary_key = Some("id".into());
    movies.settings = serde_json::json!({"searchableAttributes": ["*"], "stopWords": ["a"]});
    movies.fields = vec!["id".into(), "title".into(), "_geo".into()];
    store.put_index(&movies).await.expect("put");
    assert_eq!(store.get_index("movies").await.expect("get"), Some(movies.clone()));
    store.put_index(&meta("songs", 2)).await.expect("put new");

    let uids: Vec<String> =
        store.list_indexes().await.expect("list").into_iter().map(|m| m.uid).collect();
    assert_eq!(uids, ["books", "movies", "songs"]);

    assert!(store.delete_index("books").await.expect("delete"));
    assert!(!store.delete_index("books").await.expect("delete again"));
    assert_eq!(store.get_index("books").await.expect("get"), None);
    for uid in ["movies", "songs"] {
        store.delete_index(uid).await.expect("delete");
    }
    assert!(store.list_indexes().await.expect("list after deleting every index").is_empty());
}

/// Concurrent bumps each get their own version; a missing index is `NotFound`.
pub async fn settings_version_bumps_atomically<F: StoreFactory>(f: &F) {
    let (a, b) = f.fresh_pair(Default::default()).await;
    a.create_index(&meta("movies", 64)).await.expect("create");
    let later = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid date");
    let mut handles = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(tokio::spawn(async move {
            store.bump_settings_version("movies", later, None).await.expect("bump")
        }));
    }
    let mut versions = Vec::new();
    for h in handles {
        versions.push(h.await.expect("join"));
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=10).collect::<Vec<u64>>());
    let stored = a.get_index("movies").await.expect("get").expect("exists");
    assert_eq!((stored.settings_version, stored.updated_at), (10, later));
    let missing = a.bump_settings_version("nope", later, None).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
}
