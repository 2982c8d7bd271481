//! The SQLite file outlives the process: reopening finds everything, and migrations are
//! idempotent.

use std::collections::BTreeMap;
use std::time::Duration;

use miroir_store::prelude::*;
use miroir_store::{
    IdempotencyRecord, IndexMeta, LeaseOutcome, NewTask, SessionRecord, TaskStatus,
};
use miroir_store_sqlite::schema::CURRENT_VERSION;
use miroir_store_sqlite::{SqliteConfig, SqliteStore};
use serde_json::json;
use time::OffsetDateTime;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn everything_survives_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/dir/miroir.db");
    let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("date");
    let (task, token) = {
        let store = SqliteStore::open(SqliteConfig::new(&path)).await.expect("create");
        assert!(path.exists(), "file created on first start");
        let task = store
            .create_task(NewTask {
                index_uid: Some("movies".into()),
                kind: "documentAdditionOrUpdate".into(),
                status: TaskStatus::Enqueued,
                enqueued_at: at,
                details: None,
                node_tasks: BTreeMap::from([("n1".into(), 4)]),
            })
            .await
            .expect("task");
        let mut meta = IndexMeta::new("movies", 64, Some("id".into()), at);
        meta.settings_version = 3;
        meta.settings = serde_json::json!({"filterableAttributes": ["brand"]});
        meta.fields = vec!["id".into(), "brand".into()];
        store.create_index(&meta).await.expect("index");
        let rec = IdempotencyRecord { body_hash: "h".into(), task_uid: task.uid };
        store.put_idempotency_if_absent("k", &rec, HOUR).await.expect("idem");
        let session = SessionRecord { last_write_task: task.uid, group: "g".into() };
        store.put_session("s", &session, HOUR).await.expect("session");
        store.enqueue_job("repair", &json!({"shard": 1})).await.expect("job");
        store.save_rebalance("r", 0, &json!({"done": 1}), None).await.expect("rebalance");
        store.plugin_put("p", "k", b"v").await.expect("kv");
        store.advance_cdc_cursor("movies", 42).await.expect("cdc");
        let token = match store.acquire_lease("leader", "a", HOUR).await.expect("lease") {
            LeaseOutcome::Acquired(lease) => lease.token,
            other => panic!("{other:?}"),
        };
        assert!(store.release_lease("leader", "a", token).await.expect("release"));
        (task, token)
    };

    let store = SqliteStore::open(SqliteConfig::new(&path)).await.expect("reopen");
    assert_eq!(store.get_task(task.uid).await.expect("get"), Some(task.clone()));
    let next = store
        .create_task(NewTask {
            index_uid: None,
            kind: "indexSwap".into(),
            status: TaskStatus::Enqueued,
            enqueued_at: at,
            details: None,
            node_tasks: BTreeMap::new(),
        })
        .await
        .expect("task");
    assert!(next.uid > task.uid, "sequence persisted");
    assert_eq!(
        store.get_index("movies").await.expect("index").map(|m| m.settings_version),
        Some(3)
    );
    assert_eq!(store.get_idempotency("k").await.expect("idem").map(|r| r.task_uid), Some(task.uid));
    assert!(store.get_session("s").await.expect("session").is_some());
    assert_eq!(store.job_depth().await.expect("depth").queued, 1);
    assert_eq!(store.get_rebalance("r").await.expect("rebalance").map(|v| v.version), Some(1));
    assert_eq!(store.plugin_get("p", "k").await.expect("kv"), Some(b"v".to_vec()));
    assert_eq!(store.cdc_cursor("movies").await.expect("cdc"), 42);
    match store.acquire_lease("leader", "b", HOUR).await.expect("lease") {
        LeaseOutcome::Acquired(lease) => assert!(lease.token > token, "fencing token persisted"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn migrations_run_once_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("miroir.db");
    for _ in 0..3 {
        let store = SqliteStore::open(SqliteConfig::new(&path)).await.expect("open");
        assert_eq!(store.schema_version().await.expect("version"), CURRENT_VERSION);
    }
    // Two handles opening a brand-new file at once both succeed.
    let other = dir.path().join("race.db");
    let (a, b) = tokio::join!(
        SqliteStore::open(SqliteConfig::new(&other)),
        SqliteStore::open(SqliteConfig::new(&other))
    );
    assert_eq!(a.expect("a").schema_version().await.expect("a version"), CURRENT_VERSION);
    assert_eq!(b.expect("b").schema_version().await.expect("b version"), CURRENT_VERSION);
}

#[tokio::test]
async fn a_database_from_a_newer_miroir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("miroir.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).await.expect("create"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", CURRENT_VERSION + 1).expect("bump version");
    drop(conn);
    let err = SqliteStore::open(SqliteConfig::new(&path)).await.err().expect("refused");
    assert!(matches!(err, miroir_store::StoreError::Corrupt(_)), "{err:?}");
}

/// A corrupt file is never opened nor overwritten: it is kept aside under a `.corrupt-<secs>`
/// name with its bytes intact, and a new database takes its place. A healthy file is left alone.
#[tokio::test]
async fn a_corrupt_file_is_kept_aside_and_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("miroir.db");
    {
        let store = SqliteStore::open(SqliteConfig::new(&path)).await.expect("create");
        store.raise_task_sequence(7).await.expect("raise");
    }
    let (store, aside) = SqliteStore::open_setting_aside_corruption(SqliteConfig::new(&path))
        .await
        .expect("reopen a healthy file");
    assert_eq!(aside, None, "a healthy file stays");
    assert_eq!(store.task_sequence().await.expect("sequence"), Some(7));
    drop(store);

    let garbage = b"this is not a SQLite database, whatever its name says".repeat(100);
    std::fs::write(&path, &garbage).expect("corrupt the file");
    let (store, aside) = SqliteStore::open_setting_aside_corruption(SqliteConfig::new(&path))
        .await
        .expect("open despite the corruption");
    let aside = aside.expect("the corrupt file was set aside");
    let name = aside.file_name().expect("name").to_string_lossy().into_owned();
    assert!(name.starts_with("miroir.db.corrupt-"), "{name}");
    assert_eq!(std::fs::read(&aside).expect("kept"), garbage, "kept byte for byte");
    assert_eq!(store.task_sequence().await.expect("sequence"), Some(0), "a new database");
    assert!(store.list_indexes().await.expect("list").is_empty());
}
