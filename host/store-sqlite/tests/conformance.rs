//! The shared conformance suite on SQLite: each case gets a fresh database file, and the second
//! handle is a second connection on the same file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use miroir_store::conformance::StoreFactory;
use miroir_store::SessionLimits;
use miroir_store_sqlite::{SqliteConfig, SqliteStore};

struct SqliteFactory {
    dir: tempfile::TempDir,
    next: AtomicUsize,
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    type Store = SqliteStore;

    async fn fresh_pair(&self, sessions: SessionLimits) -> (Arc<SqliteStore>, Arc<SqliteStore>) {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let mut config = SqliteConfig::new(self.dir.path().join(format!("store-{n}.db")));
        config.sessions = sessions;
        let a = SqliteStore::open(config.clone()).await.expect("open first handle");
        let b = SqliteStore::open(config).await.expect("open second handle");
        (Arc::new(a), Arc::new(b))
    }
}

async fn factory() -> Option<SqliteFactory> {
    let dir = tempfile::tempdir().expect("temp dir");
    Some(SqliteFactory { dir, next: AtomicUsize::new(0) })
}

miroir_store::conformance_tests!(factory());
