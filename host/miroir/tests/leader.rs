//! Two `miroir serve` processes on one Redis: exactly one leads; when the leader's process is
//! killed the other takes over within the lease TTL with a larger fencing token; a leader that
//! was frozen past its lease steps down as soon as it runs again; a leader stopped cleanly hands
//! over at once, long before its lease would expire.

mod instances;

use std::time::{Duration, Instant};

use instances::{fresh_prefix, redis_url, token, wait_for, Instance};
use serde_json::Value;

#[test]
fn one_leader_and_takeover_within_the_lease_ttl() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = fresh_prefix("leader");
    let mut a = Instance::start(dir.path(), "inst-a", &redis, &prefix, "");
    let mut b = Instance::start(dir.path(), "inst-b", &redis, &prefix, "");

    // Exactly one leader, and both agree on who it is.
    let (first, second) = wait_for(Duration::from_secs(15), || {
        let (sa, sb) = (a.leader()?, b.leader()?);
        let leaders = [&sa, &sb].iter().filter(|s| s["is_leader"] == true).count();
        (leaders == 1 && sa["leader"] == sb["leader"] && sa["leader"].is_string())
            .then_some((sa, sb))
    })
    .expect("one leader within 15 s");
    assert_eq!(first["instance"], "inst-a");
    let anonymous = reqwest::blocking::get(format!("http://127.0.0.1:{}/_miroir/leader", a.port))
        .expect("request without the admin key");
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().expect("error body");
    assert_eq!(body["code"], "miroir_invalid_auth");
    assert_eq!(second["instance"], "inst-b");
    let a_leads = first["is_leader"] == true;
    if !a_leads {
        std::mem::swap(&mut a, &mut b);
    }
    let (leader, follower) = (a, b);
    let old_token = token(&leader.leader().expect("leader answers"));

    // Kill the leader's process (no clean stop): the follower takes over within the TTL.
    let killed_at = Instant::now();
    let mut leader = leader;
    leader.child.kill().expect("kill -9 the leader");
    leader.child.wait().expect("reap");
    let state =
        wait_for(Duration::from_secs(6), || follower.leader().filter(|s| s["is_leader"] == true))
            .expect("the follower becomes leader");
    let took = killed_at.elapsed();
    assert!(took < Duration::from_millis(2000 + 1500), "takeover took {took:?}");
    let new_token = token(&state);
    assert!(new_token > old_token, "fencing token {new_token} must exceed {old_token}");

    // Freeze the new leader past its lease: a fresh instance takes over; once the frozen one
    // runs again it sees its lease is gone and steps down.
    let frozen = follower;
    let fresh = Instance::start(dir.path(), "inst-c", &redis, &prefix, "");
    wait_for(Duration::from_secs(10), || fresh.leader()).expect("the fresh instance answers");
    frozen.signal("-STOP");
    let state =
        wait_for(Duration::from_secs(8), || fresh.leader().filter(|s| s["is_leader"] == true))
            .expect("the fresh instance takes over from the frozen leader");
    assert!(token(&state) > new_token);
    frozen.signal("-CONT");
    let stepped_down = wait_for(Duration::from_secs(5), || {
        frozen.leader().filter(|s| s["is_leader"] == false && s["leader"] == "inst-c")
    })
    .expect("the old leader steps down and follows the new one once it runs again");
    assert!(stepped_down["fencing_token"].is_null(), "a follower holds no token");
    drop(leader);
}

#[test]
fn a_clean_stop_hands_leadership_over_at_once() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = fresh_prefix("handover");
    // A 30 s lease: a takeover that waited for it to expire would take 30 s.
    let leader_section = "leader: { lease_ttl: 30s, renew_interval: 1s }";
    let a = Instance::start_with_leader(dir.path(), "inst-a", &redis, &prefix, "", leader_section);
    let b = Instance::start_with_leader(dir.path(), "inst-b", &redis, &prefix, "", leader_section);
    let a_leads = wait_for(Duration::from_secs(15), || {
        let (sa, sb) = (a.leader()?, b.leader()?);
        let leaders = [&sa, &sb].iter().filter(|s| s["is_leader"] == true).count();
        (leaders == 1).then_some(sa["is_leader"] == true)
    })
    .expect("one leader within 15 s");
    let (mut leader, follower) = if a_leads { (a, b) } else { (b, a) };

    let stopped_at = Instant::now();
    leader.signal("-TERM");
    let exit = leader.child.wait().expect("the leader exits");
    assert!(exit.success(), "a clean stop exits 0: {exit}");
    wait_for(Duration::from_secs(10), || follower.leader().filter(|s| s["is_leader"] == true))
        .expect("the follower leads within 10 s of the clean stop, not after the 30 s lease");
    let took = stopped_at.elapsed();
    assert!(took < Duration::from_secs(10), "handover took {took:?}");
}
