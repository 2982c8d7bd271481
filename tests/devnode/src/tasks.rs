//! The asynchronous task queue: task objects in Meilisearch's shape, their state transitions,
//! and the `GET /tasks` filters.

use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::index::Document;

/// Where a task is in its life: enqueued → processing → succeeded | failed | canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Enqueued,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] =
        [Self::Enqueued, Self::Processing, Self::Succeeded, Self::Failed, Self::Canceled];

    pub fn name(self) -> &'static str {
        match self {
            Self::Enqueued => "enqueued",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }

    /// Whether moving to `next` is a legal transition.
    pub fn can_become(self, next: TaskStatus) -> bool {
        matches!(
            (self, next),
            (Self::Enqueued, Self::Processing)
                | (Self::Enqueued, Self::Canceled)
                | (Self::Processing, Self::Succeeded)
                | (Self::Processing, Self::Failed)
                | (Self::Processing, Self::Canceled)
        )
    }
}

/// How a document write treats an existing document with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    /// POST: the new document replaces the old one.
    Replace,
    /// PUT: the new fields are merged into the old document.
    Update,
}

/// What a task does, with the data it needs.
#[derive(Debug, Clone)]
pub enum TaskKind {
    IndexCreation {
        primary_key: Option<String>,
    },
    IndexUpdate {
        primary_key: Option<String>,
        /// A new name for the index (`uid` in the request).
        new_uid: Option<String>,
    },
    IndexDeletion,
    IndexSwap {
        swaps: Vec<Value>,
    },
    DocumentAdditionOrUpdate {
        /// Shared, so that the task the route answers with costs no copy of them.
        documents: std::sync::Arc<Vec<Document>>,
        primary_key: Option<String>,
        method: WriteMethod,
        /// `skipCreation`: documents the index does not hold yet are left out.
        skip_creation: bool,
    },
    DocumentDeletionByIds {
        ids: Vec<Value>,
    },
    DocumentDeletionByFilter {
        filter: Value,
    },
    DocumentClear,
    /// `POST /indexes/{uid}/documents/edit`: a Rhai function over the documents `filter`
    /// matches (all without one).
    DocumentEdition {
        function: String,
        filter: Option<Value>,
        context: Option<Value>,
    },
    SettingsUpdate {
        patch: Value,
    },
    TaskCancelation {
        query: String,
        uids: Vec<u32>,
    },
    TaskDeletion {
        query: String,
        uids: Vec<u32>,
    },
    /// `POST /dumps`.
    DumpCreation,
    /// `POST /snapshots`.
    SnapshotCreation,
    /// `POST /indexes/{uid}/compact`.
    IndexCompaction,
}

impl TaskKind {
    /// The task `type` Meilisearch reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::IndexCreation { .. } => "indexCreation",
            Self::IndexUpdate { .. } => "indexUpdate",
            Self::IndexDeletion => "indexDeletion",
            Self::IndexSwap { .. } => "indexSwap",
            Self::DocumentAdditionOrUpdate { .. } => "documentAdditionOrUpdate",
            Self::DocumentDeletionByIds { .. } | Self::DocumentDeletionByFilter { .. } => {
                "documentDeletion"
            }
            Self::DocumentClear => "documentDeletion",
            Self::DocumentEdition { .. } => "documentEdition",
            Self::SettingsUpdate { .. } => "settingsUpdate",
            Self::TaskCancelation { .. } => "taskCancelation",
            Self::TaskDeletion { .. } => "taskDeletion",
            Self::DumpCreation => "dumpCreation",
            Self::SnapshotCreation => "snapshotCreation",
            Self::IndexCompaction => "indexCompaction",
        }
    }

    /// `details` of a task not yet processed.
    pub fn enqueued_details(&self) -> Value {
        match self {
            Self::IndexCreation { primary_key }
            | Self::IndexUpdate { primary_key, new_uid: None } => {
                json!({ "primaryKey": primary_key })
            }
            Self::IndexUpdate { primary_key, new_uid: Some(_) } => {
                json!({ "primaryKey": primary_key, "oldIndexUid": null, "newIndexUid": null })
            }
            Self::IndexDeletion => json!({ "deletedDocuments": null }),
            Self::IndexSwap { swaps } => json!({ "swaps": swaps }),
            Self::DocumentAdditionOrUpdate { documents, .. } => {
                json!({ "receivedDocuments": documents.len(), "indexedDocuments": null })
            }
            Self::DocumentDeletionByIds { ids } => {
                json!({ "providedIds": ids.len(), "deletedDocuments": null, "originalFilter": null })
            }
            Self::DocumentDeletionByFilter { filter } => json!({
                "providedIds": 0, "deletedDocuments": null, "originalFilter": filter.to_string()
            }),
            Self::DocumentClear => {
                json!({ "providedIds": 0, "deletedDocuments": null, "originalFilter": null })
            }
            Self::DocumentEdition { function, filter, context } => json!({
                "context": context,
                "deletedDocuments": null,
                "editedDocuments": null,
                "function": function,
                "originalFilter": filter.as_ref().map(Value::to_string),
            }),
            Self::SettingsUpdate { patch } => patch.clone(),
            Self::TaskCancelation { query, uids } => {
                json!({ "matchedTasks": uids.len(), "canceledTasks": null, "originalFilter": query })
            }
            Self::TaskDeletion { query, uids } => {
                json!({ "matchedTasks": uids.len(), "deletedTasks": null, "originalFilter": query })
            }
            Self::DumpCreation => json!({ "dumpUid": null }),
            Self::SnapshotCreation => Value::Null,
            Self::IndexCompaction => {
                json!({ "preCompactionSize": null, "postCompactionSize": null })
            }
        }
    }
}

/// One task, as the queue stores it.
#[derive(Debug, Clone)]
pub struct Task {
    pub uid: u32,
    pub index_uid: Option<String>,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub details: Value,
    pub error: Option<ApiError>,
    pub canceled_by: Option<u32>,
    /// The `customMetadata` query parameter of the write that enqueued the task.
    pub custom_metadata: Option<String>,
    pub enqueued_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

/// RFC 3339 with nanoseconds, as Meilisearch prints dates.
pub fn format_date(date: OffsetDateTime) -> String {
    date.format(&Rfc3339).expect("a UTC date formats as RFC 3339")
}

/// ISO 8601 duration, e.g. `PT0.012S`.
fn format_duration(d: time::Duration) -> String {
    format!("PT{}.{:09}S", d.whole_seconds(), d.subsec_nanoseconds().max(0))
}

impl Task {
    pub fn new(uid: u32, index_uid: Option<String>, kind: TaskKind, now: OffsetDateTime) -> Self {
        let details = kind.enqueued_details();
        Self {
            uid,
            index_uid,
            kind,
            status: TaskStatus::Enqueued,
            details,
            error: None,
            canceled_by: None,
            custom_metadata: None,
            enqueued_at: now,
            started_at: None,
            finished_at: None,
        }
    }

    /// Move to `next`, stamping the dates. Illegal transitions are refused.
    pub fn transition(&mut self, next: TaskStatus, now: OffsetDateTime) -> Result<(), String> {
        if !self.status.can_become(next) {
            return Err(format!(
                "task {} cannot go from {} to {}",
                self.uid,
                self.status.name(),
                next.name()
            ));
        }
        if next == TaskStatus::Processing {
            self.started_at = Some(now);
        }
        if next.is_terminal() {
            self.finished_at = Some(now);
            if self.started_at.is_none() {
                self.started_at = Some(now);
            }
        }
        self.status = next;
        Ok(())
    }

    /// The answer of a write route: `202 {"taskUid", "indexUid", "status", "type", "enqueuedAt"}`.
    pub fn summary_json(&self) -> Value {
        json!({
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": self.status.name(),
            "type": self.kind.type_name(),
            "enqueuedAt": format_date(self.enqueued_at),
        })
    }

    /// The task object of `GET /tasks/{uid}`.
    pub fn to_json(&self) -> Value {
        let duration = match (self.started_at, self.finished_at) {
            (Some(start), Some(end)) => Value::String(format_duration(end - start)),
            _ => Value::Null,
        };
        let mut out = Map::new();
        out.insert("uid".into(), json!(self.uid));
        out.insert(
            "batchUid".into(),
            if self.started_at.is_some() { json!(self.uid) } else { Value::Null },
        );
        out.insert("indexUid".into(), json!(self.index_uid));
        out.insert("status".into(), json!(self.status.name()));
        out.insert("type".into(), json!(self.kind.type_name()));
        out.insert("canceledBy".into(), json!(self.canceled_by));
        out.insert("details".into(), self.details.clone());
        out.insert("error".into(), self.error.as_ref().map_or(Value::Null, ApiError::to_json));
        out.insert("duration".into(), duration);
        out.insert("enqueuedAt".into(), json!(format_date(self.enqueued_at)));
        out.insert("startedAt".into(), json!(self.started_at.map(format_date)));
        out.insert("finishedAt".into(), json!(self.finished_at.map(format_date)));
        if let Some(metadata) = &self.custom_metadata {
            out.insert("customMetadata".into(), json!(metadata));
        }
        Value::Object(out)
    }
}

/// The filters of `GET /tasks`, `POST /tasks/cancel` and `DELETE /tasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub uids: Option<Vec<u32>>,
    pub statuses: Option<Vec<TaskStatus>>,
    pub types: Option<Vec<String>>,
    pub index_uids: Option<Vec<String>>,
    pub canceled_by: Option<Vec<u32>>,
    /// A task is its own batch once it has started.
    pub batch_uids: Option<Vec<u32>>,
    pub before_enqueued_at: Option<OffsetDateTime>,
    pub after_enqueued_at: Option<OffsetDateTime>,
    pub before_started_at: Option<OffsetDateTime>,
    pub after_started_at: Option<OffsetDateTime>,
    pub before_finished_at: Option<OffsetDateTime>,
    pub after_finished_at: Option<OffsetDateTime>,
    /// Whether any filter was given (cancel and delete require one).
    pub any: bool,
}

/// Pagination of `GET /tasks`.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub limit: usize,
    pub from: Option<u32>,
    pub reverse: bool,
}

const TASK_TYPES: [&str; 16] = [
    "documentAdditionOrUpdate",
    "documentEdition",
    "documentDeletion",
    "settingsUpdate",
    "indexCreation",
    "indexDeletion",
    "indexUpdate",
    "indexSwap",
    "taskCancelation",
    "taskDeletion",
    "dumpCreation",
    "snapshotCreation",
    "export",
    "upgradeDatabase",
    "indexCompaction",
    "networkTopologyChange",
];

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_uids(name: &str, code: &str, value: &str) -> Result<Vec<u32>, ApiError> {
    list(value)
        .map(|v| {
            v.parse::<u32>().map_err(|_| {
                ApiError::new(code, format!("Invalid value in parameter `{name}`: could not parse `{v}` as a positive integer"))
            })
        })
        .collect()
}

fn parse_date(name: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    let code = format!("invalid_task_{}", camel_to_snake(name));
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(value, &format).map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| ApiError::new(&code, format!("Invalid value in parameter `{name}`: `{value}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format.")))
}

fn camel_to_snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl TaskFilter {
    /// Parse the filter parameters; unknown parameters are refused unless `extra` lists them.
    pub fn parse(params: &[(String, String)], extra: &[&str]) -> Result<Self, ApiError> {
        let mut f = TaskFilter::default();
        for (key, value) in params {
            if value.trim() == "*" {
                f.any = true;
                continue;
            }
            match key.as_str() {
                "uids" => f.uids = Some(parse_uids(key, "invalid_task_uids", value)?),
                "canceledBy" => f.canceled_by = Some(parse_uids(key, "invalid_task_canceled_by", value)?),
                "batchUids" => f.batch_uids = Some(parse_uids(key, "invalid_task_batch_uids", value)?),
                "statuses" => {
                    f.statuses = Some(
                        list(value)
                            .map(|s| {
                                TaskStatus::ALL.into_iter().find(|st| st.name() == s).ok_or_else(|| {
                                    ApiError::new("invalid_task_statuses", format!("Invalid value in parameter `statuses`: `{s}` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`."))
                                })
                            })
                            .collect::<Result<_, _>>()?,
                    )
                }
                "types" => {
                    f.types = Some(
                        list(value)
                            .map(|t| {
                                if TASK_TYPES.contains(&t) {
                                    Ok(t.to_string())
                                } else {
                                    Err(ApiError::new("invalid_task_types", format!("Invalid value in parameter `types`: `{t}` is not a valid task type. Available types are {}.", TASK_TYPES.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "))))
                                }
                            })
                            .collect::<Result<_, _>>()?,
                    )
                }
                "indexUids" => {
                    f.index_uids = Some(
                        list(value)
                            .map(|uid| {
                                if crate::index::is_valid_index_uid(uid) {
                                    Ok(uid.to_string())
                                } else {
                                    Err(ApiError::new("invalid_task_index_uids", format!("Invalid value in parameter `indexUids`: `{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes.")))
                                }
                            })
                            .collect::<Result<_, _>>()?,
                    )
                }
                "beforeEnqueuedAt" => f.before_enqueued_at = Some(parse_date(key, value)?),
                "afterEnqueuedAt" => f.after_enqueued_at = Some(parse_date(key, value)?),
                "beforeStartedAt" => f.before_started_at = Some(parse_date(key, value)?),
                "afterStartedAt" => f.after_started_at = Some(parse_date(key, value)?),
                "beforeFinishedAt" => f.before_finished_at = Some(parse_date(key, value)?),
                "afterFinishedAt" => f.after_finished_at = Some(parse_date(key, value)?),
                other if extra.contains(&other) => continue,
                other => {
                    return Err(ApiError::new("bad_request", format!("Unknown parameter `{other}`: expected one of `uids`, `batchUids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`{}", extra.iter().map(|e| format!(", `{e}`")).collect::<String>())))
                }
            }
            f.any = true;
        }
        Ok(f)
    }

    /// Whether a task passes every given filter.
    pub fn matches(&self, task: &Task) -> bool {
        fn after(date: Option<OffsetDateTime>, bound: Option<OffsetDateTime>) -> bool {
            bound.is_none_or(|b| date.is_some_and(|d| d > b))
        }
        fn before(date: Option<OffsetDateTime>, bound: Option<OffsetDateTime>) -> bool {
            bound.is_none_or(|b| date.is_some_and(|d| d < b))
        }
        self.uids.as_ref().is_none_or(|u| u.contains(&task.uid))
            && self.statuses.as_ref().is_none_or(|s| s.contains(&task.status))
            && self.types.as_ref().is_none_or(|t| t.iter().any(|t| t == task.kind.type_name()))
            && self.index_uids.as_ref().is_none_or(|i| {
                task.index_uid.as_ref().is_some_and(|uid| i.contains(uid))
                    || matches!(&task.kind, TaskKind::IndexSwap { swaps } if swaps.iter().any(|s| s["indexes"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str().is_some_and(|x| i.iter().any(|u| u == x))))))
            })
            && self.canceled_by.as_ref().is_none_or(|c| task.canceled_by.is_some_and(|by| c.contains(&by)))
            && self.batch_uids.as_ref().is_none_or(|b| task.started_at.is_some() && b.contains(&task.uid))
            && after(Some(task.enqueued_at), self.after_enqueued_at)
            && before(Some(task.enqueued_at), self.before_enqueued_at)
            && after(task.started_at, self.after_started_at)
            && before(task.started_at, self.before_started_at)
            && after(task.finished_at, self.after_finished_at)
            && before(task.finished_at, self.before_finished_at)
    }
}

impl TaskPage {
    pub fn parse(params: &[(String, String)]) -> Result<Self, ApiError> {
        let mut page = TaskPage { limit: 20, from: None, reverse: false };
        for (key, value) in params {
            match key.as_str() {
                "limit" => {
                    page.limit = value.parse().map_err(|_| {
                        ApiError::new("invalid_task_limit", format!("Invalid value in parameter `limit`: could not parse `{value}` as a positive integer"))
                    })?
                }
                "from" => {
                    page.from = Some(value.parse().map_err(|_| {
                        ApiError::new("invalid_task_from", format!("Invalid value in parameter `from`: could not parse `{value}` as a positive integer"))
                    })?)
                }
                "reverse" => {
                    page.reverse = value.parse().map_err(|_| {
                        ApiError::new("invalid_task_reverse", format!("Invalid value in parameter `reverse`: could not parse `{value}` as a boolean"))
                    })?
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

/// The answer of `GET /tasks`: newest first (oldest first with `reverse`), `from`/`next` cursors.
pub fn list_tasks<'a>(
    tasks: impl DoubleEndedIterator<Item = &'a Task>,
    filter: &TaskFilter,
    page: &TaskPage,
) -> Value {
    let matching: Vec<&Task> = if page.reverse {
        tasks.filter(|t| filter.matches(t)).collect()
    } else {
        tasks.rev().filter(|t| filter.matches(t)).collect()
    };
    let total = matching.len();
    let start = matching
        .iter()
        .position(|t| match page.from {
            None => true,
            Some(from) if page.reverse => t.uid >= from,
            Some(from) => t.uid <= from,
        })
        .unwrap_or(total);
    let window: Vec<&Task> = matching[start..].iter().take(page.limit).copied().collect();
    let next = matching.get(start + page.limit).map(|t| t.uid);
    json!({
        "results": window.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
        "total": total,
        "limit": page.limit,
        "from": window.first().map(|t| t.uid),
        "next": next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(uid: u32, index: &str) -> Task {
        Task::new(
            uid,
            Some(index.into()),
            TaskKind::IndexCreation { primary_key: None },
            OffsetDateTime::now_utc(),
        )
    }

    #[test]
    fn legal_transitions_only() {
        let now = OffsetDateTime::now_utc();
        let mut t = task(0, "a");
        assert!(
            t.transition(TaskStatus::Succeeded, now).is_err(),
            "enqueued cannot succeed directly"
        );
        t.transition(TaskStatus::Processing, now).unwrap();
        assert!(t.started_at.is_some() && t.finished_at.is_none());
        t.transition(TaskStatus::Succeeded, now).unwrap();
        assert!(t.finished_at.is_some());
        assert!(t.transition(TaskStatus::Failed, now).is_err(), "terminal states are final");
        let mut c = task(1, "a");
        c.transition(TaskStatus::Canceled, now).unwrap();
        assert_eq!(c.to_json()["status"], "canceled");
        for s in TaskStatus::ALL {
            assert!(!TaskStatus::Succeeded.can_become(s));
            assert!(!TaskStatus::Failed.can_become(s));
            assert!(!TaskStatus::Canceled.can_become(s));
        }
    }

    #[test]
    fn task_json_has_meilisearch_fields() {
        let t = task(3, "movies");
        let v = t.to_json();
        for key in [
            "uid",
            "batchUid",
            "indexUid",
            "status",
            "type",
            "canceledBy",
            "details",
            "error",
            "duration",
            "enqueuedAt",
            "startedAt",
            "finishedAt",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["details"], json!({"primaryKey": null}));
        let s = t.summary_json();
        assert_eq!(s["taskUid"], 3);
        assert_eq!(s["status"], "enqueued");
        assert_eq!(s["type"], "indexCreation");
    }

    #[test]
    fn filters_and_pagination() {
        let tasks: Vec<Task> =
            (0..10).map(|i| task(i, if i % 2 == 0 { "even" } else { "odd" })).collect();
        let params = vec![("indexUids".to_string(), "even".to_string())];
        let filter = TaskFilter::parse(&params, &["limit", "from"]).unwrap();
        let page = TaskPage { limit: 2, from: None, reverse: false };
        let out = list_tasks(tasks.iter(), &filter, &page);
        assert_eq!(out["total"], 5);
        assert_eq!(out["from"], 8);
        assert_eq!(out["next"], 4);
        let uids: Vec<u64> =
            out["results"].as_array().unwrap().iter().map(|t| t["uid"].as_u64().unwrap()).collect();
        assert_eq!(uids, vec![8, 6]);
        let page = TaskPage { limit: 2, from: Some(4), reverse: false };
        let out = list_tasks(tasks.iter(), &filter, &page);
        assert_eq!(out["from"], 4);
        assert_eq!(out["next"], 0);
    }

    #[test]
    fn bad_filter_values_get_their_codes() {
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            TaskFilter::parse(&p("statuses", "done"), &[]).unwrap_err().code,
            "invalid_task_statuses"
        );
        assert_eq!(
            TaskFilter::parse(&p("types", "x"), &[]).unwrap_err().code,
            "invalid_task_types"
        );
        assert_eq!(TaskFilter::parse(&p("uids", "a"), &[]).unwrap_err().code, "invalid_task_uids");
        assert_eq!(
            TaskFilter::parse(&p("indexUids", "a b"), &[]).unwrap_err().code,
            "invalid_task_index_uids"
        );
        assert_eq!(
            TaskFilter::parse(&p("afterEnqueuedAt", "yesterday"), &[]).unwrap_err().code,
            "invalid_task_after_enqueued_at"
        );
        assert_eq!(TaskPage::parse(&p("limit", "x")).unwrap_err().code, "invalid_task_limit");
    }
}
