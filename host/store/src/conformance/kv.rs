//! Cases for rebalance state, plugin key-value data and CDC cursors.

use serde_json::json;

use super::StoreFactory;
use crate::prelude::*;
use crate::{CdcEntry, NewTask, StoreError, TaskStatus};

/// Saves need the current version; versions grow by one.
pub async fn rebalance_compare_and_set<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    assert_eq!(store.get_rebalance("r1").await.expect("get"), None);
    assert_eq!(store.save_rebalance("r1", 0, &json!({"done": 0}), None).await.expect("save"), 1);
    let stale = store.save_rebalance("r1", 0, &json!({"done": 9}), None).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.save_rebalance("r1", 1, &json!({"done": 5}), None).await.expect("save"), 2);
    let wrong = store.save_rebalance("r1", 7, &json!({}), None).await;
    assert!(matches!(wrong, Err(StoreError::Conflict(_))), "{wrong:?}");
    let got = store.get_rebalance("r1").await.expect("get").expect("saved");
    assert_eq!((got.version, got.doc), (2, json!({"done": 5})));
    store.save_rebalance("r0", 0, &json!([]), None).await.expect("save r0");
    assert_eq!(store.list_rebalance_runs().await.expect("list"), ["r0", "r1"]);
    assert!(store.delete_rebalance("r0").await.expect("delete"));
    assert!(!store.delete_rebalance("r0").await.expect("delete again"));
    assert_eq!(store.list_rebalance_runs().await.expect("list"), ["r1"]);
}

/// Plugins see only their own keys; prefixes are literal.
pub async fn plugin_kv_is_namespaced<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    store.plugin_put("cdc", "a:1", b"one").await.expect("put");
    store.plugin_put("cdc", "a:2", b"two").await.expect("put");
    store.plugin_put("cdc", "b:1", &[0, 255, 7]).await.expect("put binary");
    store.plugin_put("cdc", "a%_", b"odd").await.expect("put");
    store.plugin_put("other", "a:1", b"theirs").await.expect("put");
    assert_eq!(store.plugin_get("cdc", "a:1").await.expect("get"), Some(b"one".to_vec()));
    assert_eq!(store.plugin_get("other", "a:1").await.expect("get"), Some(b"theirs".to_vec()));
    assert_eq!(store.plugin_get("cdc", "b:1").await.expect("get"), Some(vec![0, 255, 7]));
    assert_eq!(store.plugin_get("cdc", "zzz").await.expect("get"), None);
    assert_eq!(store.plugin_list_keys("cdc", "a:").await.expect("list"), ["a:1", "a:2"]);
    assert_eq!(store.plugin_list_keys("cdc", "a%").await.expect("list"), ["a%_"]);
    assert_eq!(store.plugin_list_keys("cdc", "").await.expect("list").len(), 4);
    store.plugin_put("cdc", "a:1", b"uno").await.expect("overwrite");
    assert_eq!(store.plugin_get("cdc", "a:1").await.expect("get"), Some(b"uno".to_vec()));
    assert!(store.plugin_delete("cdc", "a:1").await.expect("delete"));
    assert!(!store.plugin_delete("cdc", "a:1").await.expect("delete again"));
    assert_eq!(store.plugin_list_keys("other", "").await.expect("list"), ["a:1"]);
}

/// Cursors start at 0, advance, never move back, and are per index.
pub async fn cdc_cursor_is_monotonic<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    assert_eq!(store.cdc_cursor("movies").await.expect("get"), 0);
    assert_eq!(store.advance_cdc_cursor("movies", 10).await.expect("advance"), 10);
    assert_eq!(store.advance_cdc_cursor("movies", 10).await.expect("same"), 10);
    let back = store.advance_cdc_cursor("movies", 9).await;
    assert!(matches!(back, Err(StoreError::Conflict(_))), "{back:?}");
    assert_eq!(
        store.advance_cdc_cursor("movies", u64::MAX >> 1).await.expect("big"),
        u64::MAX >> 1
    );
    assert_eq!(store.cdc_cursor("movies").await.expect("get"), u64::MAX >> 1);
    assert_eq!(store.cdc_cursor("books").await.expect("get"), 0);
}

/// The change log gives increasing positions per index, pages them in order, appends
/// atomically and trims from the oldest without reusing a position.
pub async fn cdc_log_pages_in_order_and_trims<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let event = |index: &str, n: u64| (index.to_owned(), format!("{{\"n\":{n}}}").into_bytes());
    let entry = |index: &str, seq: u64, n: u64| CdcEntry {
        index_uid: index.to_owned(),
        seq,
        payload: event(index, n).1,
    };
    assert_eq!(store.cdc_span("movies").await.expect("span"), None);
    assert!(store.cdc_indexes().await.expect("indexes").is_empty());
    let first: Vec<_> = (1..=3).map(|n| event("movies", n)).collect();
    assert_eq!(store.append_cdc_entries(&first).await.expect("append"), [1, 2, 3]);
    let mixed = [event("books", 1), event("movies", 4), event("movies", 4)];
    assert_eq!(store.append_cdc_entries(&mixed).await.expect("append mixed"), [1, 4, 5]);
    assert_eq!(store.cdc_span("movies").await.expect("span"), Some((1, 5)));
    assert_eq!(store.cdc_span("books").await.expect("span"), Some((1, 1)));
    assert_eq!(store.cdc_indexes().await.expect("indexes"), ["books", "movies"]);
    let page = store.cdc_entries("movies", 1, 2).await.expect("page");
    assert_eq!(page, vec![entry("movies", 2, 2), entry("movies", 3, 3)]);
    let rest = store.cdc_entries("movies", 3, 100).await.expect("rest");
    assert_eq!(rest, vec![entry("movies", 4, 4), entry("movies", 5, 4)], "equal events stay two");
    assert!(store.cdc_entries("movies", 5, 100).await.expect("none").is_empty());
    assert!(store.cdc_entries("films", 0, 100).await.expect("unknown").is_empty());
    assert_eq!(store.trim_cdc_entries("movies", 4).await.expect("trim"), 3);
    assert_eq!(store.trim_cdc_entries("movies", 4).await.expect("trim again"), 0);
    assert_eq!(store.cdc_span("movies").await.expect("span"), Some((4, 5)));
    let oldest = store.cdc_entries("movies", 0, 1).await.expect("oldest");
    assert_eq!(oldest, vec![entry("movies", 4, 4)]);
    assert_eq!(store.cdc_span("books").await.expect("books untouched"), Some((1, 1)));
    assert_eq!(store.trim_cdc_entries("movies", 6).await.expect("trim all"), 2);
    assert_eq!(store.cdc_span("movies").await.expect("span"), None);
    let after = store.append_cdc_entries(&[event("movies", 6)]).await.expect("append after");
    assert_eq!(after, [6], "a trimmed position is not given again");
}

/// A task recorded with its change event: the event (made from the record) is in the change
/// log at the position answered, or, for a backend that cannot do both at once, the task alone
/// is recorded and nothing is appended.
pub async fn a_task_and_its_change_event_are_recorded_together<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let task = NewTask {
        index_uid: Some("movies".into()),
        kind: "documentAdditionOrUpdate".into(),
        status: TaskStatus::Enqueued,
        enqueued_at: time::OffsetDateTime::now_utc(),
        details: None,
        node_tasks: std::collections::BTreeMap::new(),
    };
    let change: crate::ChangeEntry = std::sync::Arc::new(|record: &crate::TaskRecord| {
        ("movies".to_owned(), format!("{{\"task\":{}}}", record.uid).into_bytes())
    });
    let (record, position) =
        store.create_task_with_change(task, change).await.expect("create with change");
    assert_eq!(store.get_task(record.uid).await.expect("get").map(|t| t.uid), Some(record.uid));
    let entries = store.cdc_entries("movies", 0, 10).await.expect("entries");
    match position {
        Some(position) => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].seq, position);
            assert_eq!(entries[0].payload, format!("{{\"task\":{}}}", record.uid).into_bytes());
        }
        None => assert!(entries.is_empty(), "nothing appended without a position"),
    }
}
