//! Index lifecycle (`ilm`): time-series indexes that roll over and expire.
//!
//! A policy names a `pattern` (e.g. `logs`) that clients write to and search as if it were one
//! index. Its documents live in backing indexes `logs-000001`, `logs-000002`...; the last one is
//! written to:
//!
//! - document and settings writes to `logs` (and reads of its settings) go to the current
//!   backing index ([`rewrite`], before routing);
//! - searches and facet searches on `logs` cover every backing index and merge as one index
//!   holding all their documents would answer ([`search`]);
//! - the leader ([`lifecycle`]) rolls over when a condition is met (a new backing index with the
//!   settings of the current one), deletes backing indexes past retention, and keeps older
//!   backing indexes' settings equal to the current one's.
//!
//! What each instance knows of the backing indexes ([`Lifecycles`]) is refreshed from the task
//! store every second, and by the leader as soon as it changes it.

pub mod lifecycle;
pub mod record;

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use miroir_cluster::merge::{merge_facet_search, merge_search};
use miroir_config::IlmPolicy;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::HttpResult;
use crate::AppState;
pub use record::{backing_index, Record};

/// What this instance knows of every policy's backing indexes.
#[derive(Debug, Default)]
pub struct Lifecycles {
    records: RwLock<HashMap<String, Record>>,
}

impl Lifecycles {
    /// The record of `pattern` as last read (a policy not started yet: its first index).
    pub fn record(&self, pattern: &str) -> Record {
        let records = self.records.read().expect("ilm lock poisoned");
        records.get(pattern).cloned().unwrap_or_else(|| Record::first(pattern, now_ms()))
    }

    /// Keeps `record` as the latest (ignored when an instance already holds a newer one).
    pub fn remember(&self, record: Record) {
        let mut records = self.records.write().expect("ilm lock poisoned");
        let newer =
            records.get(&record.pattern).is_none_or(|known| known.version <= record.version);
        if newer {
            records.insert(record.pattern.clone(), record);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The policy whose pattern is `uid`, if any.
pub fn policy<'a>(state: &'a AppState, uid: &str) -> Option<&'a IlmPolicy> {
    state.config().ilm.policies.iter().find(|p| p.pattern == uid)
}

/// Re-reads every policy's record from the task store.
pub async fn refresh(state: &AppState) -> HttpResult<()> {
    for policy in &state.config().ilm.policies {
        if let Some(record) = record::load(state, &policy.pattern).await? {
            state.lifecycles().remember(record);
        }
    }
    Ok(())
}

/// The path a request to an alias is served at: document writes and settings of `pattern` go
/// to its current backing index. Other paths are left alone.
fn rewritten(state: &AppState, method: &Method, path: &str) -> Option<String> {
    let rest = path.strip_prefix("/indexes/")?;
    let (uid, tail) = rest.split_once('/')?;
    let policy = policy(state, uid)?;
    let section = tail.split('/').next().unwrap_or_default();
    let write = *method != Method::GET;
    let routed = match section {
        "documents" => write,
        "settings" => true,
        _ => false,
    };
    routed.then(|| {
        let current = state.lifecycles().record(&policy.pattern).current().index.clone();
        format!("/indexes/{current}/{tail}")
    })
}

/// Rewrites `request`'s path per [`rewritten`]; runs before routing.
pub fn rewrite(state: &AppState, mut request: Request) -> Request {
    if state.config().ilm.policies.is_empty() {
        return request;
    }
    let Some(path) = rewritten(state, request.method(), request.uri().path()) else {
        return request;
    };
    let with_query = match request.uri().query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    if let Ok(uri) = with_query.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}

/// A search (`route` `search`) or facet search (`facet-search`) of `pattern`: every live backing
/// index is scattered, and all their answers merge as one index's shards would.
pub async fn search(
    state: &AppState,
    caller: &Caller,
    pattern: &str,
    headers: &HeaderMap,
    route: &str,
    request: &Value,
) -> HttpResult<Response> {
    if route == "search" {
        crate::search_hooks::check_vector_feature(state, request)?;
    }
    let record = state.lifecycles().record(pattern);
    let mut answers = Vec::new();
    let mut missing = BTreeSet::new();
    let mut settings = None;
    for generation in record.live() {
        let index = generation.index.as_str();
        crate::reserved_names::check_json_read(state, caller, index, route, request).await?;
        let scatter =
            match crate::search::scatter(state, caller, index, headers, route, request).await {
                Ok(scatter) => scatter,
                // Not created yet (nothing was written to it) or deleted meanwhile.
                Err(error) if error.is_index_not_found() => continue,
                Err(error) => return Err(error),
            };
        missing.extend(scatter.missing.iter().map(|s| format!("{index}:{}", s.get())));
        answers.extend(scatter.answers().iter().cloned());
        settings = Some(scatter.settings);
    }
    let Some(settings) = settings else {
        return Err(miroir_types::ApiError::index_not_found(pattern).into());
    };
    let merged = if route == "facet-search" {
        merge_facet_search(request, &answers, &settings)
    } else {
        merge_search(request, &answers, &settings)
    };
    let mut response = Json(merged).into_response();
    if !missing.is_empty() {
        let list = missing.into_iter().collect::<Vec<_>>().join(",");
        if let Ok(value) = axum::http::HeaderValue::from_str(&format!("shards={list}")) {
            response.headers_mut().insert(crate::fanout::DEGRADED, value);
        }
    }
    Ok(response)
}

/// `GET /_miroir/ilm`: every policy, its backing indexes and what it waits for.
pub async fn status(State(state): State<AppState>) -> HttpResult<Response> {
    refresh(&state).await?;
    let mut policies = Vec::new();
    for policy in &state.config().ilm.policies {
        let record = state.lifecycles().record(&policy.pattern);
        policies.push(json!({
            "pattern": policy.pattern,
            "rollover": policy.rollover,
            "deleteAfter": policy.delete_after.map(|d| d.to_string()),
            "writeIndex": record.current().index,
            "indexes": record.generations,
        }));
    }
    Ok(Json(json!({
        "checkInterval": state.config().ilm.check_interval.to_string(),
        "policies": policies,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_record_replaces_an_older_one_only() {
        let lifecycles = Lifecycles::default();
        let mut second = Record::first("logs", 0).rolled_over(10);
        second.version = 2;
        lifecycles.remember(second.clone());
        let mut stale = Record::first("logs", 0);
        stale.version = 1;
        lifecycles.remember(stale);
        assert_eq!(lifecycles.record("logs").current().index, "logs-000002");
        assert_eq!(lifecycles.record("other").current().index, "other-000001");
    }
}
