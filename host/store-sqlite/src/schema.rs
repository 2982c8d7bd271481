//! The versioned schema. `PRAGMA user_version` holds how many migrations have run; each
//! migration runs once, in its own `BEGIN IMMEDIATE` transaction, so opening a database again —
//! or from two handles at once — is idempotent.
//!
//! Dates are Unix nanoseconds; expiry and lease times are Unix milliseconds.

use miroir_store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::sql_err;

/// The migrations, in order. Never edit one that has shipped; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: every table of the first release.
    "CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
     CREATE TABLE tasks (
         uid INTEGER PRIMARY KEY,
         index_uid TEXT,
         kind TEXT NOT NULL,
         status TEXT NOT NULL,
         enqueued_at INTEGER NOT NULL,
         started_at INTEGER,
         finished_at INTEGER,
         details TEXT,
         error TEXT,
         node_tasks TEXT NOT NULL
     );
     CREATE INDEX tasks_by_index ON tasks (index_uid, uid);
     CREATE INDEX tasks_by_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL;
     CREATE TABLE indexes (
         uid TEXT PRIMARY KEY,
         shard_count INTEGER NOT NULL,
         primary_key TEXT,
         settings_version INTEGER NOT NULL,
         settings TEXT NOT NULL DEFAULT '{}',
         fields TEXT NOT NULL DEFAULT '[]',
         created_at INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE TABLE idempotency (
         key TEXT PRIMARY KEY,
         body_hash TEXT NOT NULL,
         task_uid INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE TABLE sessions (
         id TEXT PRIMARY KEY,
         last_write_task INTEGER NOT NULL,
         grp TEXT NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE INDEX sessions_by_expiry ON sessions (expires_at);
     CREATE TABLE jobs (
         id INTEGER PRIMARY KEY,
         kind TEXT NOT NULL,
         payload TEXT NOT NULL,
         state TEXT NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0,
         worker TEXT,
         lease_until INTEGER,
         last_error TEXT
     );
     CREATE INDEX jobs_by_state ON jobs (state, id);
     CREATE TABLE rebalance (run_id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL);
     CREATE TABLE leases (
         name TEXT PRIMARY KEY,
         holder TEXT,
         token INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE TABLE plugin_kv (
         plugin TEXT NOT NULL,
         key TEXT NOT NULL,
         value BLOB NOT NULL,
         PRIMARY KEY (plugin, key)
     );
     CREATE TABLE cdc_cursors (index_uid TEXT PRIMARY KEY, cursor INTEGER NOT NULL);",
    // 2: the change-data-capture log.
    "CREATE TABLE cdc_log (
         index_uid TEXT NOT NULL,
         seq INTEGER NOT NULL,
         payload BLOB NOT NULL,
         PRIMARY KEY (index_uid, seq)
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// The schema version of the open database.
pub fn version(conn: &Connection) -> StoreResult<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql_err)
}

/// Runs every migration the database has not seen. `Corrupt` if the database is newer than
/// this build.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
        let at = version(&tx)?;
        if at > CURRENT_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {at} is newer than this Miroir ({CURRENT_VERSION}); \
                 upgrade Miroir"
            )));
        }
        if at == CURRENT_VERSION {
            return Ok(());
        }
        tx.execute_batch(MIGRATIONS[at as usize]).map_err(sql_err)?;
        tx.pragma_update(None, "user_version", at + 1).map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        tracing::info!(version = at + 1, "migrated task store schema");
    }
}
