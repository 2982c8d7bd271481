//! The feed on a real SQLite task store: events get consecutive cursors, reads come from memory
//! or the store, the log is trimmed to `store_events` with the gap reported, a waiting read is
//! answered by the next append, and a new feed on the same store continues the cursors.

use std::sync::Arc;
use std::time::Duration;

use miroir_cdc::Cdc;
use miroir_config::CdcConfig;
use miroir_store::{LeaderState, TaskStore};
use miroir_store_sqlite::{SqliteConfig, SqliteStore};
use miroir_types::{ChangeFeed, WriteEvent};
use tokio::sync::watch;

fn event(uid: u64) -> WriteEvent {
    WriteEvent {
        event_id: format!("movies:{uid}"),
        task_uid: uid,
        index: "movies".into(),
        operation: "documentAdditionOrUpdate".into(),
        primary_keys: vec![uid.to_string()],
        shards: vec![0],
        timestamp_ms: 1_700_000_000_000,
        partial_update: false,
        documents: None,
    }
}

fn config(memory_events: u32, store_events: u64) -> CdcConfig {
    let mut config = CdcConfig { enabled: true, ..CdcConfig::default() };
    config.buffer.memory_events = memory_events;
    config.buffer.store_events = store_events;
    config
}

fn start(config: &CdcConfig, store: &Arc<SqliteStore>) -> Cdc {
    let (_tx, leader) = watch::channel(LeaderState::default());
    Cdc::start(config, Arc::clone(store) as Arc<dyn TaskStore>, leader)
}

fn cursors(page: &miroir_types::ChangePage) -> Vec<u64> {
    page.events.iter().map(|e| e["cursor"].as_u64().expect("cursor")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_paged_trimmed_waited_on_and_continued_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        SqliteStore::open(SqliteConfig::new(dir.path().join("m.db"))).await.expect("store"),
    );
    let cdc = start(&config(4, 5), &store);
    for uid in 1..=8 {
        cdc.feed.record(event(uid)).await;
    }
    // Trimming follows the acknowledgement of the append.
    for _ in 0..200 {
        if cdc.stats().trimmed == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = cdc.stats();
    assert_eq!((stats.recorded, stats.trimmed), (8, 3), "{stats:?}");

    // From the start: 1 to 3 were trimmed; the page says so and starts at 4 (from the store).
    let page = cdc.feed.changes("movies", 0, 100, Duration::ZERO).await.expect("page");
    assert_eq!(cursors(&page), [4, 5, 6, 7, 8]);
    assert_eq!((page.oldest, page.cursor, page.head), (4, 8, 8));
    assert_eq!(page.events[0]["event_id"], "movies:4");
    // From 5: memory holds 5 to 8.
    let page = cdc.feed.changes("movies", 5, 2, Duration::ZERO).await.expect("page");
    assert_eq!(cursors(&page), [6, 7]);
    assert_eq!((page.oldest, page.cursor, page.head), (6, 7, 8));

    // Caught up: a read waits for the next append.
    let feed = Arc::clone(&cdc.feed);
    let waiting =
        tokio::spawn(async move { feed.changes("movies", 8, 100, Duration::from_secs(20)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cdc.feed.record(event(9)).await;
    let page = waiting.await.expect("join").expect("page");
    assert_eq!(cursors(&page), [9]);
    // Nothing comes: an empty page once the wait is over, the cursor unchanged.
    let page = cdc.feed.changes("movies", 9, 100, Duration::from_millis(50)).await.expect("page");
    assert!(page.events.is_empty());
    assert_eq!((page.cursor, page.oldest, page.head), (9, 10, 9));
    let page = cdc.feed.changes("books", 0, 100, Duration::ZERO).await.expect("page");
    assert!(page.events.is_empty());
    assert_eq!((page.cursor, page.oldest, page.head), (0, 1, 0));
    drop(cdc);

    // Another feed on the same store (a restart): reads from the store, appends after 9.
    let cdc = start(&config(4, 5), &store);
    let page = cdc.feed.changes("movies", 6, 100, Duration::ZERO).await.expect("page");
    assert_eq!(cursors(&page), [7, 8, 9]);
    cdc.feed.record(event(10)).await;
    let page = cdc.feed.changes("movies", 9, 100, Duration::ZERO).await.expect("page");
    assert_eq!(cursors(&page), [10]);
    assert_eq!(page.events[0]["task_uid"], 10);
}
