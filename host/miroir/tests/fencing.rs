//! The fencing token stops a deposed leader's late writes, with real processes: two
//! `miroir serve` instances on one Redis; the leader is frozen (`SIGSTOP`) in the middle of a
//! slow pruning run, the other instance takes over, and when the frozen one runs again its next
//! pruning batch, still carrying the old token, is refused by the store.

mod instances;

use std::collections::BTreeMap;
use std::time::Duration;

use instances::{fresh_prefix, one_leader, redis_url, token, wait_for, Instance};
use miroir_store::{NewTask, TaskLog, TaskStatus};
use miroir_store_redis::{RedisConfig, RedisStore};
use time::OffsetDateTime;

/// Old finished tasks to prune: 3,000 at 5 per batch and 100 ms between batches is a run of
/// about a minute, far longer than the test needs the leader to be mid-run.
const OLD_TASKS: usize = 3000;
const PRUNING: &str = "task_retention: 1h, prune_interval: 1h, prune_batch_size: 5, \
                       prune_batch_pause: 100ms";
const PRUNED: &str = "miroir_tasks_pruned_total";
const REFUSED: &str = "miroir_fenced_writes_refused_total{job=\"prune\"}";

/// Records `OLD_TASKS` tasks that succeeded a year ago, through the task store's own API.
fn seed_old_tasks(redis: &str, prefix: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let config = RedisConfig::new(redis.to_owned()).with_prefix(prefix.to_owned());
        let store = RedisStore::connect(config).await.expect("connect to Redis");
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(365);
        for _ in 0..OLD_TASKS {
            let new = NewTask {
                index_uid: Some("movies".to_owned()),
                kind: "documentAdditionOrUpdate".to_owned(),
                status: TaskStatus::Enqueued,
                enqueued_at: long_ago,
                details: None,
                node_tasks: BTreeMap::from([("n0".to_owned(), 1)]),
            };
            let mut task = store.create_task(new).await.expect("create task");
            task.status = TaskStatus::Succeeded;
            task.started_at = Some(long_ago);
            task.finished_at = Some(long_ago);
            store.update_task(&task).await.expect("finish task");
        }
    });
}

#[test]
fn a_deposed_leaders_late_pruning_batch_is_refused() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = fresh_prefix("fencing");
    seed_old_tasks(&redis, &prefix);
    let a = Instance::start(dir.path(), "fence-a", &redis, &prefix, PRUNING);
    let b = Instance::start(dir.path(), "fence-b", &redis, &prefix, PRUNING);
    let (leader, follower) = one_leader(a, b, Duration::from_secs(15));
    let old_token = token(&leader.leader().expect("the leader answers"));

    // The leader starts pruning as soon as it leads; catch it mid-run and freeze it.
    let pruned = wait_for(Duration::from_secs(15), || leader.metric(PRUNED).filter(|n| *n >= 5.0))
        .expect("the leader prunes a first batch");
    assert!(pruned < OLD_TASKS as f64, "the run must still be going: {pruned}");
    leader.signal("-STOP");

    // The follower takes over with a larger token and carries on pruning with it.
    let state =
        wait_for(Duration::from_secs(10), || follower.leader().filter(|s| s["is_leader"] == true))
            .expect("the follower takes over from the frozen leader");
    assert!(token(&state) > old_token, "{} must exceed {old_token}", token(&state));
    wait_for(Duration::from_secs(10), || follower.metric(PRUNED).filter(|n| *n > 0.0))
        .expect("the new leader prunes");
    assert_eq!(follower.metric(REFUSED), Some(0.0), "the new leader's fence is current");

    // The old leader wakes up mid-run: its next batch carries the old token and is refused;
    // the run stops there, and the instance reports that it no longer leads.
    leader.signal("-CONT");
    wait_for(Duration::from_secs(10), || leader.metric(REFUSED).filter(|n| *n >= 1.0))
        .expect("the deposed leader's late batch is refused");
    // Stepping down and learning who leads now are two observations of the lease: wait for
    // both.
    let stepped_down = wait_for(Duration::from_secs(5), || {
        leader.leader().filter(|s| s["is_leader"] == false && s["leader"] == follower.name.as_str())
    })
    .expect("the deposed leader reports that it does not lead and names the new leader");
    assert!(stepped_down["fencing_token"].is_null(), "a follower holds no token");
    assert_eq!(leader.metric(REFUSED), Some(1.0), "one run, stopped at its first refusal");
}
