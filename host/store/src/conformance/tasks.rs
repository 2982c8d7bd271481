//! Cases for the task sequence, records, listing and pruning.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::prune::leader_fence;
use super::StoreFactory;
use crate::prelude::*;
use crate::{NewTask, StoreError, TaskFilter, TaskRecord, TaskStatus};

fn new_task(index: &str, kind: &str, at: OffsetDateTime) -> NewTask {
    NewTask {
        index_uid: Some(index.to_owned()),
        kind: kind.to_owned(),
        status: TaskStatus::Enqueued,
        enqueued_at: at,
        details: Some(serde_json::json!({ "receivedDocuments": 3 })),
        node_tasks: BTreeMap::from([("n1".to_owned(), 7), ("n2".to_owned(), 9)]),
    }
}

fn base() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("valid date")
}

fn uids(tasks: &[TaskRecord]) -> Vec<u64> {
    tasks.iter().map(|t| t.uid).collect()
}

fn filter(limit: usize) -> TaskFilter {
    TaskFilter { limit, ..TaskFilter::default() }
}

/// Uids grow strictly, also after the newest task was pruned.
pub async fn task_uids_strictly_increase<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let mut last = 0;
    for _ in 0..5 {
        let t = store.create_task(new_task("a", "indexCreation", base())).await.expect("create");
        assert!(t.uid > last, "uid {} after {last}", t.uid);
        last = t.uid;
    }
    let mut newest = store.get_task(last).await.expect("get").expect("exists");
    newest.status = TaskStatus::Succeeded;
    newest.finished_at = Some(base());
    store.update_task(&newest).await.expect("update");
    let fence = leader_fence(&*store).await;
    let pruned = store.prune_tasks(base() + Duration::seconds(1), 10, &fence).await;
    assert_eq!(pruned.expect("prune"), 1);
    let next = store.create_task(new_task("a", "indexCreation", base())).await.expect("create");
    assert!(next.uid > last, "uid {} reused after pruning {last}", next.uid);
}

/// A task reads back as written; updates replace it; a missing task is `None`/`NotFound`.
pub async fn task_roundtrip_and_update<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let at = base() + Duration::nanoseconds(123_456_789);
    let created = store.create_task(new_task("movies", "documentAdditionOrUpdate", at)).await;
    let created = created.expect("create");
    assert_eq!(created.enqueued_at, at, "nanosecond precision kept");
    assert_eq!(store.get_task(created.uid).await.expect("get"), Some(created.clone()));

    let mut done = created.clone();
    done.status = TaskStatus::Failed;
    done.started_at = Some(at + Duration::milliseconds(5));
    done.finished_at = Some(at + Duration::milliseconds(9));
    done.error =
        Some(serde_json::json!({ "code": "invalid_document_id", "type": "invalid_request" }));
    done.node_tasks.insert("n3".to_owned(), 11);
    store.update_task(&done).await.expect("update");
    assert_eq!(store.get_task(done.uid).await.expect("get"), Some(done.clone()));

    assert_eq!(store.get_task(done.uid + 1000).await.expect("get missing"), None);
    let mut ghost = done.clone();
    ghost.uid += 1000;
    assert!(matches!(store.update_task(&ghost).await, Err(StoreError::NotFound(_))));
}

/// Filters by uid, status, type and index combine with AND; values inside one filter with OR.
pub async fn task_listing_filters<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let specs = [
        ("movies", "documentAdditionOrUpdate", TaskStatus::Succeeded),
        ("movies", "settingsUpdate", TaskStatus::Failed),
        ("books", "documentAdditionOrUpdate", TaskStatus::Enqueued),
        ("books", "indexDeletion", TaskStatus::Processing),
        ("songs", "documentAdditionOrUpdate", TaskStatus::Succeeded),
    ];
    let mut created = Vec::new();
    for (index, kind, status) in specs {
        let mut t = store.create_task(new_task(index, kind, base())).await.expect("create");
        t.status = status;
        store.update_task(&t).await.expect("update");
        created.push(t.uid);
    }
    let mut swap = new_task("x", "indexSwap", base());
    swap.index_uid = None;
    let swap = store.create_task(swap).await.expect("create swap");

    let all = store.list_tasks(&filter(100)).await.expect("list");
    assert_eq!(all.total, 6);
    assert_eq!(
        uids(&all.results),
        vec![swap.uid, created[4], created[3], created[2], created[1], created[0]]
    );

    let by_status = TaskFilter { statuses: vec![TaskStatus::Succeeded], ..filter(100) };
    let page = store.list_tasks(&by_status).await.expect("list");
    assert_eq!(uids(&page.results), vec![created[4], created[0]]);
    assert_eq!(page.total, 2);

    let by_kind_and_index = TaskFilter {
        kinds: vec!["documentAdditionOrUpdate".into()],
        index_uids: vec!["movies".into(), "books".into()],
        ..filter(100)
    };
    let page = store.list_tasks(&by_kind_and_index).await.expect("list");
    assert_eq!(uids(&page.results), vec![created[2], created[0]]);

    let by_uid = TaskFilter { uids: vec![created[1], swap.uid, 999_999], ..filter(100) };
    let page = store.list_tasks(&by_uid).await.expect("list");
    assert_eq!(uids(&page.results), vec![swap.uid, created[1]]);

    let none = TaskFilter { index_uids: vec!["nope".into()], ..filter(100) };
    let page = store.list_tasks(&none).await.expect("list");
    assert!(page.results.is_empty() && page.total == 0 && page.next.is_none());
}

/// Date bounds are exclusive and exclude tasks whose date is unset.
pub async fn task_listing_date_bounds<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let at = base() + Duration::seconds(i * 10);
        let mut t = store.create_task(new_task("a", "x", at)).await.expect("create");
        if i >= 2 {
            t.started_at = Some(at + Duration::seconds(1));
            t.finished_at = Some(at + Duration::seconds(2));
            t.status = TaskStatus::Succeeded;
            store.update_task(&t).await.expect("update");
        }
        tasks.push(t);
    }
    let list = |filter: TaskFilter| {
        let store = store.clone();
        async move { uids(&store.list_tasks(&filter).await.expect("list").results) }
    };
    let after = TaskFilter { after_enqueued_at: Some(tasks[1].enqueued_at), ..filter(10) };
    assert_eq!(list(after).await, vec![tasks[3].uid, tasks[2].uid]);
    let before = TaskFilter { before_enqueued_at: Some(tasks[1].enqueued_at), ..filter(10) };
    assert_eq!(list(before).await, vec![tasks[0].uid]);
    let started = TaskFilter { after_started_at: Some(base()), ..filter(10) };
    assert_eq!(list(started).await, vec![tasks[3].uid, tasks[2].uid]);
    let finished = TaskFilter {
        before_finished_at: Some(base() + Duration::seconds(32)),
        after_finished_at: Some(base() + Duration::seconds(21)),
        before_started_at: Some(base() + Duration::seconds(100)),
        ..filter(10)
    };
    assert_eq!(list(finished).await, vec![tasks[2].uid]);
}

/// Pages come newest first; `next` chains pages; `total` ignores `from` and `limit`.
pub async fn task_listing_pagination<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let mut all = Vec::new();
    for i in 0..25 {
        let index = if i % 2 == 0 { "even" } else { "odd" };
        all.push(store.create_task(new_task(index, "x", base())).await.expect("create").uid);
    }
    all.reverse();
    let mut seen = Vec::new();
    let mut from = None;
    loop {
        let page = store.list_tasks(&TaskFilter { from, ..filter(10) }).await.expect("list");
        assert_eq!(page.total, 25);
        assert!(page.results.len() <= 10);
        seen.extend(uids(&page.results));
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, all);

    let odd = TaskFilter { index_uids: vec!["odd".into()], from: Some(all[5]), ..filter(3) };
    let page = store.list_tasks(&odd).await.expect("list");
    assert_eq!(page.total, 12);
    let expected: Vec<u64> = all.iter().copied().filter(|u| *u <= all[5]).collect::<Vec<_>>();
    let expected_odd: Vec<u64> = expected.into_iter().filter(|u| (u - all[24]) % 2 == 1).collect();
    assert_eq!(uids(&page.results), expected_odd[..3].to_vec());
    assert_eq!(page.next, Some(expected_odd[3]));

    let empty = store.list_tasks(&filter(0)).await.expect("list");
    assert!(empty.results.is_empty());
    assert_eq!(empty.next, Some(all[0]));
}

/// Pruning deletes terminal tasks finished before the cutoff and nothing else.
pub async fn prune_removes_only_old_terminal_tasks<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let cutoff = base() + Duration::days(7);
    let cases = [
        (TaskStatus::Succeeded, Some(base())),
        (TaskStatus::Failed, Some(base())),
        (TaskStatus::Canceled, Some(base())),
        (TaskStatus::Succeeded, Some(cutoff + Duration::seconds(1))),
        (TaskStatus::Processing, None),
        (TaskStatus::Enqueued, None),
    ];
    let mut uids = Vec::new();
    for (status, finished_at) in cases {
        let mut t = store.create_task(new_task("a", "x", base())).await.expect("create");
        t.status = status;
        t.finished_at = finished_at;
        store.update_task(&t).await.expect("update");
        uids.push(t.uid);
    }
    let fence = leader_fence(&*store).await;
    assert_eq!(store.prune_tasks(cutoff, 10, &fence).await.expect("prune"), 3);
    for (i, uid) in uids.iter().enumerate() {
        let kept = store.get_task(*uid).await.expect("get").is_some();
        assert_eq!(kept, i >= 3, "task {i}");
    }
    assert_eq!(store.prune_tasks(cutoff, 10, &fence).await.expect("prune again"), 0);
    assert_eq!(store.list_tasks(&filter(10)).await.expect("list").total, 3);
}

/// Deleting tasks removes the finished ones among the uids and keeps unfinished ones.
pub async fn delete_removes_only_finished_tasks<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    let mut uids = Vec::new();
    for status in [TaskStatus::Succeeded, TaskStatus::Failed, TaskStatus::Processing] {
        let mut t = store.create_task(new_task("a", "x", base())).await.expect("create");
        t.status = status;
        t.finished_at = status.is_terminal().then(base);
        store.update_task(&t).await.expect("update");
        uids.push(t.uid);
    }
    let other = store.create_task(new_task("b", "x", base())).await.expect("create");
    assert_eq!(store.delete_tasks(&uids).await.expect("delete"), 2);
    assert!(store.get_task(uids[0]).await.expect("get").is_none());
    assert!(store.get_task(uids[1]).await.expect("get").is_none());
    assert!(store.get_task(uids[2]).await.expect("get").is_some(), "unfinished tasks stay");
    assert!(store.get_task(other.uid).await.expect("get").is_some(), "other tasks stay");
    assert_eq!(store.list_tasks(&filter(10)).await.expect("list").total, 2);
    assert_eq!(store.delete_tasks(&uids).await.expect("delete again"), 0);
}

/// The sequence reads back, is raised (never lowered) and the next uid follows it: how Miroir
/// restores the sequence from the high-water mark it keeps on the nodes after a store loss.
pub async fn task_sequence_is_raised_never_lowered<F: StoreFactory>(f: &F) {
    let store = f.fresh().await;
    assert_eq!(store.task_sequence().await.expect("sequence"), Some(0), "a new store");
    let first = store.create_task(new_task("a", "indexCreation", base())).await.expect("create");
    assert_eq!(store.task_sequence().await.expect("sequence"), Some(first.uid));
    assert_eq!(store.raise_task_sequence(10_000).await.expect("raise"), 10_000);
    let next = store.create_task(new_task("a", "indexCreation", base())).await.expect("create");
    assert_eq!(next.uid, 10_001, "the next uid follows the raised sequence");
    assert_eq!(store.raise_task_sequence(5).await.expect("raise lower"), 10_001, "not lowered");
    assert_eq!(store.task_sequence().await.expect("sequence"), Some(10_001));
    let after = store.create_task(new_task("a", "indexCreation", base())).await.expect("create");
    assert_eq!(after.uid, 10_002);
}
