//! Miroir's embedded task store on SQLite, the default for a single Miroir instance.
//!
//! This crate owns the SQLite backend of [`miroir_store::TaskStore`]: opening (and creating) the
//! database file, WAL mode and the busy timeout, the versioned schema ([`schema`]), and one
//! module per table. It does not own the trait, the records or the conformance suite (they live
//! in `miroir-store`), nor the choice of backend (the binary makes it from config).
//!
//! One connection per store handle, behind a mutex; every call runs on tokio's blocking pool.
//! Writes use `BEGIN IMMEDIATE` so two handles on one file (or two processes) serialize on the
//! database lock instead of failing a lock upgrade; the busy timeout bounds the wait. TTLs are
//! expiry timestamps (Unix milliseconds) checked on every read; [`TaskStore::purge_expired`]
//! deletes what has expired. Leases use the wall clock, so every handle on one file must share it
//! — which they do, since SQLite serves one machine.

mod cdc;
mod error;
mod idempotency;
mod indexes;
mod jobs;
mod leases;
mod plugin_kv;
mod rebalance;
pub mod schema;
mod sessions;
mod tasks;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use miroir_store::{NoMetrics, SessionLimits, SharedMetrics, StoreError, StoreResult, TaskStore};
use rusqlite::Connection;

use crate::error::sql_err;

/// The backend name used in metrics labels.
pub const BACKEND: &str = "sqlite";

/// Where and how to open the database.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; it and its parent directories are created if missing.
    pub path: PathBuf,
    /// How long a call waits for another writer's lock before failing `Unavailable`.
    pub busy_timeout: Duration,
    /// The session bound and eviction rule.
    pub sessions: SessionLimits,
}

impl SqliteConfig {
    /// `path` with a 5 s busy timeout and the default session bound.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            busy_timeout: Duration::from_secs(5),
            sessions: SessionLimits::default(),
        }
    }
}

struct Inner {
    conn: Mutex<Connection>,
    sessions: SessionLimits,
}

/// A handle on a SQLite task store. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    metrics: SharedMetrics,
}

impl SqliteStore {
    /// Opens the database at `config.path`, creating it if needed, and migrates its schema to
    /// the current version.
    pub async fn open(config: SqliteConfig) -> StoreResult<Self> {
        let sessions = config.sessions;
        let conn = tokio::task::spawn_blocking(move || open_connection(&config))
            .await
            .map_err(|e| StoreError::Unavailable(format!("sqlite open task: {e}")))??;
        Ok(SqliteStore {
            inner: Arc::new(Inner { conn: Mutex::new(conn), sessions }),
            metrics: Arc::new(NoMetrics),
        })
    }

    /// Opens like [`SqliteStore::open`], except that a file SQLite finds corrupt (not a
    /// database, malformed, or failing `PRAGMA quick_check`) is never opened nor overwritten: it
    /// is renamed `<file>.corrupt-<unix seconds>` (its `-wal` and `-shm` files likewise) and a
    /// new, empty database takes its place. Returns the store and where the bad file went, so
    /// the caller can report it and rebuild what the nodes hold.
    pub async fn open_setting_aside_corruption(
        config: SqliteConfig,
    ) -> StoreResult<(Self, Option<PathBuf>)> {
        let path = config.path.clone();
        let set_aside =
            tokio::task::spawn_blocking(move || set_aside_if_corrupt(&path))
                .await
                .map_err(|e| StoreError::Unavailable(format!("sqlite check task: {e}")))??;
        Ok((Self::open(config).await?, set_aside))
    }

    /// The same store reporting its operations to `metrics`.
    pub fn with_metrics(mut self, metrics: SharedMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> StoreResult<u32> {
        self.call("schema_version", |conn| schema::version(conn)).await
    }

    fn session_limits(&self) -> SessionLimits {
        self.inner.sessions
    }

    /// Runs `f` on the connection on the blocking pool and reports it as `op`.
    async fn call<T, F>(&self, op: &'static str, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let start = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .conn
                .lock()
                .map_err(|_| StoreError::Unavailable("sqlite connection poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("sqlite task: {e}")))
        .and_then(|r| r);
        self.metrics.observe(op, BACKEND, start.elapsed(), result.is_ok());
        result
    }
}

/// Why SQLite finds the file at `path` corrupt, if it does. A missing file is not corrupt.
pub fn corruption(path: &std::path::Path) -> Option<String> {
    if !path.exists() {
        return None;
    }
    let is_corrupt = |e: &rusqlite::Error| {
        matches!(e, rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
    };
    let conn = match Connection::open(path) {
        Ok(conn) => conn,
        Err(e) if is_corrupt(&e) => return Some(e.to_string()),
        // Not a verdict on the file (permissions, locks): `open` reports it.
        Err(_) => return None,
    };
    match conn.query_row("PRAGMA quick_check", [], |row| row.get::<_, String>(0)) {
        Ok(verdict) if verdict == "ok" => None,
        Ok(verdict) => Some(verdict),
        Err(e) if is_corrupt(&e) => Some(e.to_string()),
        Err(_) => None,
    }
}

fn set_aside_if_corrupt(path: &std::path::Path) -> StoreResult<Option<PathBuf>> {
    let Some(reason) = corruption(path) else { return Ok(None) };
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{secs}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside).map_err(|e| {
        StoreError::Unavailable(format!("cannot move the corrupt {} aside: {e}", path.display()))
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        if std::path::Path::new(&from).exists() {
            let _ = std::fs::rename(&from, &to);
        }
    }
    tracing::error!(
        path = %path.display(),
        kept_as = %aside.display(),
        reason,
        "the SQLite task store is corrupt: kept it aside and started a new one"
    );
    Ok(Some(aside))
}

fn open_connection(config: &SqliteConfig) -> StoreResult<Connection> {
    if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let mut conn = Connection::open(&config.path).map_err(sql_err)?;
    conn.busy_timeout(config.busy_timeout).map_err(sql_err)?;
    let mode = wal_mode(&conn, config.busy_timeout)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, path = %config.path.display(), "sqlite did not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_err)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// Switches to WAL. SQLite does not call the busy handler for this pragma, so a handle opening a
/// new file while another one converts it retries here, within the busy timeout.
fn wal_mode(conn: &Connection, busy_timeout: Duration) -> StoreResult<String> {
    let deadline = Instant::now() + busy_timeout;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Ok(mode) => return Ok(mode),
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(sql_err(e)),
        }
    }
}

#[async_trait]
impl TaskStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn purge_expired(&self) -> StoreResult<u64> {
        self.call("purge_expired", |conn| {
            let now = miroir_store::clock::now_ms();
            let idem = conn
                .execute("DELETE FROM idempotency WHERE expires_at <= ?1", [now])
                .map_err(sql_err)?;
            let sessions = conn
                .execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])
                .map_err(sql_err)?;
            Ok((idem + sessions) as u64)
        })
        .await
    }
}
