//! The rebalance waits for the instances, not for a fixed time: after a fleet change,
//! `followers::wait_for_all` returns once every live instance recorded the new version, waits
//! while one has not, and does not wait for an instance gone for longer than `GONE_AFTER`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{serve, ClusterBuilder};
use miroir_http::fleet::{self, followers};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_waits_until_every_live_instance_follows_the_fleet() {
    let cluster = ClusterBuilder::new(1, 2, 1)
        .configure(|config| config.instance_id = Some("first".into()))
        .start()
        .await;
    let a = cluster.state.clone();
    fleet::load_or_seed(&a).await.expect("fleet");
    let mut config = cluster.config.clone();
    config.instance_id = Some("second".into());
    let (_addr, b, _server) = serve(&config, &cluster.store_dir).await;
    fleet::load_or_seed(&b).await.expect("fleet");
    followers::record(&a).await.expect("record");
    followers::record(&b).await.expect("record");

    // An instance gone long ago, on an old version, is not waited for.
    let long_ago = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64
        - followers::GONE_AFTER.as_millis() as u64
        - 5_000;
    let gone = serde_json::to_vec(&json!({"version": 0, "at_ms": long_ago})).expect("json");
    a.store().plugin_put("_miroir_fleet_followers", "gone|h|1|x", &gone).await.expect("put");

    // `a` changes the fleet; `b` has not read it yet.
    let before = a.fleet().fleet().version;
    fleet::update(&a, None, |fleet| {
        fleet.nodes[0].address = fleet.nodes[0].address.clone();
        Ok(())
    })
    .await
    .expect("update");
    assert!(a.fleet().fleet().version > before, "the change made a new version");
    // `a` recorded the version it made itself (`update`): only `second` is waited for.

    let waiting = tokio::spawn({
        let a = a.clone();
        async move {
            let started = std::time::Instant::now();
            followers::wait_for_all(&a).await;
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "the leader went on while `second` followed an older fleet");
    fleet::refresh(&b).await.expect("refresh");
    followers::record(&b).await.expect("record");
    let waited = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait ends once every live instance follows")
        .expect("task");
    assert!(
        waited < followers::WAIT_AT_MOST,
        "it ended because `second` followed, not at the limit: {waited:?}"
    );
}
