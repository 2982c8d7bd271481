//! Leases with fencing tokens. A lease row keeps the latest token issued for its name even
//! after release or expiry, so tokens keep growing across restarts.

use std::time::Duration;

use async_trait::async_trait;
use miroir_store::clock::{now_ms, ttl_ms};
use miroir_store::{Fence, Lease, LeaseOutcome, LeaseStore, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::sql_err;
use crate::SqliteStore;

fn remaining(expires_at: i64, now: i64) -> Duration {
    Duration::from_millis(expires_at.saturating_sub(now).max(0) as u64)
}

/// `Ok` if `fence.token` is the latest token issued for `fence.lease`. Call it inside the write's
/// transaction so the check and the write are atomic.
pub(crate) fn check_fence_in(conn: &Connection, fence: &Fence) -> StoreResult<()> {
    let latest: Option<u64> = conn
        .query_row("SELECT token FROM leases WHERE name = ?1", [&fence.lease], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    match latest {
        Some(latest) if latest == fence.token => Ok(()),
        latest => Err(StoreError::Conflict(format!(
            "fencing token {} of lease `{}` is stale (latest {})",
            fence.token,
            fence.lease,
            latest.unwrap_or(0)
        ))),
    }
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<LeaseOutcome> {
        let (name, holder, ttl) = (name.to_owned(), holder.to_owned(), ttl_ms(ttl));
        self.call("acquire_lease", move |conn| {
            let tx =
                conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let now = now_ms();
            let row: Option<(Option<String>, u64, i64)> = tx
                .query_row(
                    "SELECT holder, token, expires_at FROM leases WHERE name = ?1",
                    [&name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql_err)?;
            let lease = |holder: String, token| Lease {
                name: name.clone(),
                holder,
                token,
                remaining: Duration::from_millis(ttl as u64),
            };
            let outcome = match row {
                Some((Some(current), token, expires_at)) if expires_at > now => {
                    if current != holder {
                        let other = Lease {
                            remaining: remaining(expires_at, now),
                            ..lease(current, token)
                        };
                        return Ok(LeaseOutcome::HeldByOther(other));
                    }
                    tx.execute(
                        "UPDATE leases SET expires_at = ?2 WHERE name = ?1",
                        params![name, now + ttl],
                    )
                    .map_err(sql_err)?;
                    LeaseOutcome::Acquired(lease(holder, token))
                }
                row => {
                    // A lease seen for the first time (a new file, or one rebuilt after a loss)
                    // starts from the clock in milliseconds, so its tokens exceed any token
                    // an earlier file issued: fencing never goes back.
                    let token = row.map_or_else(|| now.max(1) as u64, |(_, t, _)| t + 1);
                    tx.execute(
                        "INSERT INTO leases (name, holder, token, expires_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (name) DO UPDATE
                         SET holder = ?2, token = ?3, expires_at = ?4",
                        params![name, holder, token, now + ttl],
                    )
                    .map_err(sql_err)?;
                    LeaseOutcome::Acquired(lease(holder, token))
                }
            };
            tx.commit().map_err(sql_err)?;
            Ok(outcome)
        })
        .await
    }

    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        token: u64,
        ttl: Duration,
    ) -> StoreResult<Option<Lease>> {
        let (name, holder, ttl) = (name.to_owned(), holder.to_owned(), ttl_ms(ttl));
        self.call("renew_lease", move |conn| {
            let now = now_ms();
            let changed = conn
                .execute(
                    "UPDATE leases SET expires_at = ?4
                     WHERE name = ?1 AND holder = ?2 AND token = ?3 AND expires_at > ?5",
                    params![name, holder, token, now + ttl, now],
                )
                .map_err(sql_err)?;
            Ok((changed == 1).then(|| Lease {
                name,
                holder,
                token,
                remaining: Duration::from_millis(ttl as u64),
            }))
        })
        .await
    }

    async fn release_lease(&self, name: &str, holder: &str, token: u64) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.call("release_lease", move |conn| {
            let changed = conn
                .execute(
                    "UPDATE leases SET holder = NULL, expires_at = 0
                     WHERE name = ?1 AND holder = ?2 AND token = ?3 AND expires_at > ?4",
                    params![name, holder, token, now_ms()],
                )
                .map_err(sql_err)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn current_lease(&self, name: &str) -> StoreResult<Option<Lease>> {
        let name = name.to_owned();
        self.call("current_lease", move |conn| {
            let now = now_ms();
            let row: Option<(String, u64, i64)> = conn
                .query_row(
                    "SELECT holder, token, expires_at FROM leases
                     WHERE name = ?1 AND holder IS NOT NULL AND expires_at > ?2",
                    params![name, now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(sql_err)?;
            Ok(row.map(|(holder, token, expires_at)| Lease {
                name,
                holder,
                token,
                remaining: remaining(expires_at, now),
            }))
        })
        .await
    }

    async fn check_fence(&self, fence: &Fence) -> StoreResult<()> {
        let fence = fence.clone();
        self.call("check_fence", move |conn| check_fence_in(conn, &fence)).await
    }
}
