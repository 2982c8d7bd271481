//! `store-bench`: operations per second of the task-store backends, printed as a table.
//!
//! This crate owns nothing but the benchmark. It measures `create_task`, `get_task` and the
//! idempotency check (`put_idempotency_if_absent` on a new key, and on a key that exists — the
//! retry path) on SQLite (a temporary file) and on Redis (`MIROIR_BENCH_REDIS_URL`, else
//! `MIROIR_TEST_REDIS_URL`; skipped when neither is set), each run sequentially (one caller)
//! and with 16 concurrent callers. `MIROIR_BENCH_OPS` sets operations per row (default 5000).
//!
//! Run: `cargo run --release -p miroir-store-bench`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use miroir_store::prelude::*;
use miroir_store::{IdempotencyRecord, NewTask, TaskStatus};
use miroir_store_redis::{RedisConfig, RedisStore};
use miroir_store_sqlite::{SqliteConfig, SqliteStore};
use time::OffsetDateTime;

const CONCURRENCY: usize = 16;
const DAY: Duration = Duration::from_secs(24 * 3600);

fn new_task(i: usize) -> NewTask {
    NewTask {
        index_uid: Some("movies".into()),
        kind: "documentAdditionOrUpdate".into(),
        status: TaskStatus::Enqueued,
        enqueued_at: OffsetDateTime::now_utc(),
        details: Some(serde_json::json!({ "receivedDocuments": i, "indexedDocuments": null })),
        node_tasks: BTreeMap::from([("node-1".into(), i as u64), ("node-2".into(), i as u64)]),
    }
}

/// Runs `op(i)` for `i` in `0..ops`, spread over `callers` tasks; returns operations per second.
async fn measure<S, F, Fut>(
    store: &Arc<S>,
    ops: usize,
    callers: usize,
    op: F,
) -> anyhow::Result<f64>
where
    S: TaskStore,
    F: Fn(Arc<S>, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = miroir_store::StoreResult<()>> + Send,
{
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..callers {
        let (store, op) = (Arc::clone(store), op.clone());
        handles.push(tokio::spawn(async move {
            let mut i = c;
            while i < ops {
                op(Arc::clone(&store), i).await?;
                i += callers;
            }
            Ok::<_, miroir_store::StoreError>(())
        }));
    }
    for h in handles {
        h.await.context("bench task")??;
    }
    Ok(ops as f64 / start.elapsed().as_secs_f64())
}

async fn bench<S: TaskStore>(name: &str, store: Arc<S>, ops: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let first = store.create_task(new_task(0)).await?.uid;
    let hit = IdempotencyRecord { body_hash: "h".into(), task_uid: first };
    store.put_idempotency_if_absent("existing", &hit, DAY).await?;
    for callers in [1, CONCURRENCY] {
        let create = measure(&store, ops, callers, |s: Arc<S>, i| async move {
            s.create_task(new_task(i)).await.map(|_| ())
        })
        .await?;
        let get = measure(&store, ops, callers, move |s: Arc<S>, i| async move {
            s.get_task(first + (i as u64 % 1000)).await.map(|_| ())
        })
        .await?;
        let tag = format!("{callers}-{}", OffsetDateTime::now_utc().unix_timestamp_nanos());
        let idem_new = measure(&store, ops, callers, move |s: Arc<S>, i| {
            let key = format!("key-{tag}-{i}");
            async move {
                let rec = IdempotencyRecord { body_hash: "h".into(), task_uid: i as u64 };
                s.put_idempotency_if_absent(&key, &rec, DAY).await.map(|_| ())
            }
        })
        .await?;
        let idem_hit = measure(&store, ops, callers, move |s: Arc<S>, _| async move {
            let rec = IdempotencyRecord { body_hash: "h".into(), task_uid: 0 };
            s.put_idempotency_if_absent("existing", &rec, DAY).await.map(|_| ())
        })
        .await?;
        rows.push(Row { backend: name.to_owned(), callers, create, get, idem_new, idem_hit });
    }
    Ok(rows)
}

struct Row {
    backend: String,
    callers: usize,
    create: f64,
    get: f64,
    idem_new: f64,
    idem_hit: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ops: usize =
        std::env::var("MIROIR_BENCH_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let mut rows = Vec::new();

    let dir = tempfile::tempdir()?;
    let sqlite = SqliteStore::open(SqliteConfig::new(dir.path().join("bench.db"))).await?;
    rows.extend(bench("sqlite", Arc::new(sqlite), ops).await?);

    let url =
        std::env::var("MIROIR_BENCH_REDIS_URL").or_else(|_| std::env::var("MIROIR_TEST_REDIS_URL"));
    match url {
        Ok(url) => {
            let prefix = format!("miroir-bench:{}:", std::process::id());
            let redis = RedisStore::connect(RedisConfig::new(url).with_prefix(prefix)).await?;
            rows.extend(bench("redis", Arc::new(redis), ops).await?);
        }
        Err(_) => eprintln!("redis skipped: set MIROIR_BENCH_REDIS_URL or MIROIR_TEST_REDIS_URL"),
    }

    println!("{ops} operations per row; operations per second");
    println!(
        "| {:<8} | {:>7} | {:>12} | {:>12} | {:>16} | {:>16} |",
        "backend", "callers", "create_task", "get_task", "idempotency new", "idempotency hit"
    );
    println!("|{:-<10}|{:->9}|{:->14}|{:->14}|{:->18}|{:->18}|", "", "", "", "", "", "");
    for r in rows {
        println!(
            "| {:<8} | {:>7} | {:>12.0} | {:>12.0} | {:>16.0} | {:>16.0} |",
            r.backend, r.callers, r.create, r.get, r.idem_new, r.idem_hit
        );
    }
    Ok(())
}
