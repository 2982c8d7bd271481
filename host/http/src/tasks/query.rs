//! The query of `GET /tasks`, `POST /tasks/cancel` and `DELETE /tasks`, parsed as one node
//! parses it: every filter accepts `*` (no restriction, but it counts as a filter for cancel and
//! delete), unknown parameters are refused, `reverse` lists oldest first.
//!
//! The task store filters what it can; `canceledBy` and `batchUids` (a Miroir task is its own
//! batch) are applied here.

use miroir_store::{TaskFilter, TaskRecord, TaskStatus};
use miroir_types::ErrorCode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{HttpError, HttpResult};

/// Every task type of Meilisearch 1.50.
pub const TASK_TYPES: &[&str] = &[
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

/// The filter parameters, in the order Meilisearch's errors list them.
const FILTERS: &[&str] = &[
    "uids",
    "batchUids",
    "canceledBy",
    "types",
    "statuses",
    "indexUids",
    "afterEnqueuedAt",
    "beforeEnqueuedAt",
    "afterStartedAt",
    "beforeStartedAt",
    "afterFinishedAt",
    "beforeFinishedAt",
];

/// A parsed task query.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// What the task store filters (with `limit` and `from`).
    pub filter: TaskFilter,
    /// Only tasks canceled by one of these tasks.
    pub canceled_by: Option<Vec<u64>>,
    /// Only tasks of these batches.
    pub batch_uids: Option<Vec<u64>>,
    /// Oldest first.
    pub reverse: bool,
    /// Whether any filter was given (cancel and delete require one).
    pub any: bool,
}

impl TaskQuery {
    /// Whether the store alone can answer (no filter of Miroir's own, newest first).
    pub fn store_only(&self) -> bool {
        !self.reverse && self.canceled_by.is_none() && self.batch_uids.is_none()
    }

    /// Whether `task`, already matched by the store filter, passes `batchUids` (a started task
    /// is its own batch); `canceledBy` is checked by the caller, which knows who canceled what.
    pub fn matches_batch(&self, task: &TaskRecord) -> bool {
        self.batch_uids
            .as_ref()
            .is_none_or(|uids| task.started_at.is_some() && uids.contains(&task.uid))
    }
}

fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn uids(name: &str, code: ErrorCode, value: &str) -> HttpResult<Vec<u64>> {
    items(value)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                HttpError::api(
                    code,
                    format!(
                        "Invalid value in parameter `{name}`: could not parse `{v}` as a positive \
                         integer"
                    ),
                )
            })
        })
        .collect()
}

fn date(name: &str, code: ErrorCode, value: &str) -> HttpResult<OffsetDateTime> {
    if let Ok(date) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(date);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format).map(|d| d.midnight().assume_utc()).map_err(|_| {
        HttpError::api(
            code,
            format!(
                "Invalid value in parameter `{name}`: `{value}` is an invalid date-time. It should \
                 follow the YYYY-MM-DD or RFC 3339 date-time format."
            ),
        )
    })
}

fn count(name: &str, code: ErrorCode, value: &str) -> HttpResult<u64> {
    value.parse().map_err(|_| {
        HttpError::api(
            code,
            format!(
                "Invalid value in parameter `{name}`: could not parse `{value}` as a positive integer"
            ),
        )
    })
}

/// Parses a task query; `paging` says whether `limit`, `from` and `reverse` are accepted
/// (`GET /tasks`) or refused as unknown parameters (cancel and delete). `limit` defaults to 20.
pub fn parse(query: Option<&str>, paging: bool) -> HttpResult<TaskQuery> {
    let mut q = TaskQuery {
        filter: TaskFilter { limit: 20, ..TaskFilter::default() },
        ..TaskQuery::default()
    };
    let f = &mut q.filter;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let (name, value) = (name.as_ref(), value.as_ref());
        match name {
            "limit" | "from" | "reverse" if paging => {
                match name {
                    "limit" => {
                        f.limit = usize::try_from(count(name, ErrorCode::InvalidTaskLimit, value)?)
                            .unwrap_or(usize::MAX)
                    }
                    "from" => f.from = Some(count(name, ErrorCode::InvalidTaskFrom, value)?),
                    _ => {
                        q.reverse = value.parse().map_err(|_| {
                            HttpError::api(
                                ErrorCode::InvalidTaskReverse,
                                format!(
                                    "Invalid value in parameter `reverse`: could not parse \
                                     `{value}` as a boolean"
                                ),
                            )
                        })?
                    }
                }
                continue;
            }
            known if FILTERS.contains(&known) => {}
            other => {
                let extra = if paging { ", `limit`, `from`, `reverse`" } else { "" };
                let expected: Vec<String> = FILTERS.iter().map(|f| format!("`{f}`")).collect();
                return Err(HttpError::api(
                    ErrorCode::BadRequest,
                    format!(
                        "Unknown parameter `{other}`: expected one of {}{extra}",
                        expected.join(", ")
                    ),
                ));
            }
        }
        q.any = true;
        if value.trim() == "*" {
            continue;
        }
        match name {
            "uids" => f.uids = uids(name, ErrorCode::InvalidTaskUids, value)?,
            "batchUids" => q.batch_uids = Some(uids(name, ErrorCode::InvalidTaskBatchUids, value)?),
            "canceledBy" => {
                q.canceled_by = Some(uids(name, ErrorCode::InvalidTaskCanceledBy, value)?)
            }
            "statuses" => {
                f.statuses = items(value)
                    .map(|s| {
                        s.parse::<TaskStatus>().map_err(|_| {
                            HttpError::api(
                                ErrorCode::InvalidTaskStatuses,
                                format!(
                                    "Invalid value in parameter `statuses`: `{s}` is not a valid \
                                     task status. Available statuses are `enqueued`, \
                                     `processing`, `succeeded`, `failed`, `canceled`."
                                ),
                            )
                        })
                    })
                    .collect::<HttpResult<_>>()?
            }
            "types" => {
                f.kinds = items(value)
                    .map(|t| {
                        if TASK_TYPES.contains(&t) {
                            Ok(t.to_owned())
                        } else {
                            let all: Vec<String> =
                                TASK_TYPES.iter().map(|t| format!("`{t}`")).collect();
                            Err(HttpError::api(
                                ErrorCode::InvalidTaskTypes,
                                format!(
                                    "Invalid value in parameter `types`: `{t}` is not a valid \
                                     task type. Available types are {}.",
                                    all.join(", ")
                                ),
                            ))
                        }
                    })
                    .collect::<HttpResult<_>>()?
            }
            "indexUids" => {
                f.index_uids = items(value)
                    .map(|s| {
                        miroir_types::IndexUid::new(s).map(|u| u.as_str().to_owned()).map_err(
                            |_| {
                                HttpError::api(
                                    ErrorCode::InvalidIndexUid,
                                    format!(
                                    "Invalid value in parameter `indexUids`: `{s}` is not a valid \
                                     index uid. Index uid can be an integer or a string \
                                     containing only alphanumeric characters, hyphens (-) and \
                                     underscores (_), and can not be more than 512 bytes."
                                ),
                                )
                            },
                        )
                    })
                    .collect::<HttpResult<_>>()?
            }
            "beforeEnqueuedAt" => {
                f.before_enqueued_at =
                    Some(date(name, ErrorCode::InvalidTaskBeforeEnqueuedAt, value)?)
            }
            "afterEnqueuedAt" => {
                f.after_enqueued_at =
                    Some(date(name, ErrorCode::InvalidTaskAfterEnqueuedAt, value)?)
            }
            "beforeStartedAt" => {
                f.before_started_at =
                    Some(date(name, ErrorCode::InvalidTaskBeforeStartedAt, value)?)
            }
            "afterStartedAt" => {
                f.after_started_at = Some(date(name, ErrorCode::InvalidTaskAfterStartedAt, value)?)
            }
            "beforeFinishedAt" => {
                f.before_finished_at =
                    Some(date(name, ErrorCode::InvalidTaskBeforeFinishedAt, value)?)
            }
            _ => {
                f.after_finished_at =
                    Some(date(name, ErrorCode::InvalidTaskAfterFinishedAt, value)?)
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(query: &str, paging: bool) -> String {
        match parse(Some(query), paging) {
            Err(HttpError::Api(error)) => error.code().name().to_owned(),
            Err(other) => format!("{other:?}"),
            Ok(_) => "ok".into(),
        }
    }

    #[test]
    fn stars_are_filters_without_restriction() {
        let q = parse(Some("afterEnqueuedAt=*&types=*&statuses=*"), false).expect("valid");
        assert!(q.any);
        assert!(q.filter.after_enqueued_at.is_none() && q.filter.kinds.is_empty());
        assert!(!parse(Some(""), false).expect("valid").any);
    }

    #[test]
    fn every_1_50_type_and_the_new_filters_parse() {
        let q = parse(Some("types=networkTopologyChange,indexCompaction&canceledBy=3&batchUids=1,2&reverse=true"), true)
            .expect("valid");
        assert_eq!(q.filter.kinds.len(), 2);
        assert_eq!(q.canceled_by, Some(vec![3]));
        assert_eq!(q.batch_uids, Some(vec![1, 2]));
        assert!(q.reverse && !q.store_only());
        assert!(parse(Some("canceledBy=3"), false).expect("valid").any);
    }

    #[test]
    fn bad_or_unknown_parameters_are_refused_as_one_node_does() {
        assert_eq!(code("types=fly", true), "invalid_task_types");
        assert_eq!(code("canceledBy=x", false), "invalid_task_canceled_by");
        assert_eq!(code("batchUids=x", false), "invalid_task_batch_uids");
        assert_eq!(code("reverse=maybe", true), "invalid_task_reverse");
        assert_eq!(code("foo=1", true), "bad_request");
        assert_eq!(code("limit=1", false), "bad_request");
        assert_eq!(code("afterEnqueuedAt=yesterday", false), "invalid_task_after_enqueued_at");
    }
}
