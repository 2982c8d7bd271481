//! The hook port: how the gateway's request path calls optional features (plugins) without
//! knowing what implements them.
//!
//! The HTTP layer holds one `Arc<dyn HookPort>` and asks [`HookPort::hooks`] which hooks exist
//! before doing any work for them, so a gateway with no hook pays one virtual call and a branch per
//! request ([`NoHooks`]). Every method has a pass-through default: an implementation overrides only
//! the hooks it offers. The plugin runtime (`miroir-plugins`) implements it over the loaded
//! WebAssembly components; tests implement it natively.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// Which read a search hook is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchRoute {
    /// `/indexes/{uid}/search`, and the searches plugins run through their `search` import.
    Search,
    /// `/indexes/{uid}/similar`.
    Similar,
}

/// Who serves one search, as [`HookPort::plan_search`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchPlan {
    /// No hook takes the search: the gateway serves it on its own path.
    Decline,
    /// A hook took the search: scatter `request` instead of the client's, then merge with
    /// [`HookPort::merge_search`] of `merged_by` when set, else with the default merge.
    Rewrite {
        /// What every shard is sent (before the gateway's own additions).
        request: Value,
        /// The plugin whose `merge-search` merges the answers.
        merged_by: Option<String>,
    },
    /// A hook answered the search itself: the client's answer (status 200).
    Answer {
        /// The response body.
        body: Value,
        /// Headers added to the response.
        headers: Vec<(String, String)>,
    },
}

/// Which hooks an implementation offers. The gateway skips everything a hook would need (copies
/// of requests, per-shard answers, spawned tasks) when its flag is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookSet {
    /// [`HookPort::plan_search`] rewrites searches before the scatter.
    pub plan_search: bool,
    /// [`HookPort::merge_search`] replaces the default merge.
    pub merge_search: bool,
    /// [`HookPort::after_response`] sees reads after they were answered.
    pub after_response: bool,
    /// [`HookPort::on_write`] sees writes that reached quorum.
    pub on_write: bool,
}

impl HookSet {
    /// Whether a search goes through a hook (plan or merge).
    pub fn searches(&self) -> bool {
        self.plan_search || self.merge_search
    }
}

/// One shard's answer to a search: given to `merge-search` and returned by the plugins' `scatter`
/// import.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardAnswer {
    /// The shard number.
    pub shard: u32,
    /// The id of the node that answered (or failed to); empty when no node could be asked.
    pub node: String,
    /// The node's HTTP status; `0` when it could not be reached.
    pub status: u16,
    /// The node's JSON body: its search answer for this shard alone, or an error object when
    /// `status` is not 2xx.
    pub body: Value,
    /// How long the node took to answer the request carrying this shard.
    pub took: Duration,
}

/// A read and its answer, given to `after-response` once the response was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadExchange {
    /// The method in upper case.
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Request headers, names in lower case, `authorization` removed.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
    /// The response headers.
    pub response_headers: Vec<(String, String)>,
    /// The response body.
    pub response_body: Vec<u8>,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// From arrival to the response being ready.
    pub total: Duration,
}

/// A client write that reached quorum, given to `on-write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteEvent {
    /// Stable per write: `<index>:<task uid>`.
    pub event_id: String,
    /// The Miroir task uid answered to the client.
    pub task_uid: u64,
    /// The index written to.
    pub index: String,
    /// Meilisearch's task type, e.g. `documentAdditionOrUpdate`, `documentDeletion`.
    pub operation: String,
    /// The primary keys of the documents touched, when the write names them.
    pub primary_keys: Vec<String>,
    /// The shards the write went to.
    pub shards: Vec<u32>,
    /// When the write reached quorum, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// For `documentAdditionOrUpdate`: `true` when the documents were sent with `PUT` (each
    /// one's fields are merged into the stored document), `false` with `POST` (each one replaces
    /// the stored document). `false` for every other operation.
    pub partial_update: bool,
    /// The documents written, as a JSON array in the client's order (CSV and NDJSON parsed),
    /// when `cdc.include_documents` is on; `None` otherwise and for deletions.
    pub documents: Option<Value>,
}

/// Why a hook on the client's path failed. The gateway answers the client with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The hook's implementation failed (a plugin trapped, looped past its deadline, ran out of
    /// memory): answered as `miroir_plugin_failed` (502).
    #[error("{message}")]
    Failed {
        /// Who failed (the plugin's name).
        plugin: String,
        /// What happened.
        message: String,
    },
    /// The hook refused the request with an error of its own choosing, answered as it is in
    /// Meilisearch's error shape.
    #[error("{code}: {message}")]
    Rejected {
        /// Who refused.
        plugin: String,
        /// The HTTP status.
        status: u16,
        /// The error code, e.g. `invalid_search_vector`.
        code: String,
        /// The explanation.
        message: String,
    },
}

/// The gateway's hooks. Every method passes through by default.
#[async_trait]
pub trait HookPort: Send + Sync + 'static {
    /// The hooks this implementation offers; the gateway calls no other.
    fn hooks(&self) -> HookSet {
        HookSet::default()
    }

    /// Decides who serves the search `request` of `index` on `route`: the first hook (in load
    /// order) that does not decline takes it. `caller` names the plugin that runs this search
    /// through its own `search` import: its hooks are skipped, so a hook never recurses into
    /// itself. The default merge of a [`SearchPlan::Rewrite`] still answers the client's own
    /// `offset`, `limit`, `q`.
    async fn plan_search(
        &self,
        index: &str,
        route: SearchRoute,
        request: &Value,
        caller: Option<&str>,
    ) -> Result<SearchPlan, HookError> {
        let _ = (index, route, request, caller);
        Ok(SearchPlan::Decline)
    }

    /// Merges the per-shard `answers` with the `merge-search` of `plugin` (the one a
    /// [`SearchPlan::Rewrite`] named) into the response the client receives. `request` is the
    /// client's own. `None` lets the gateway's default merge run.
    async fn merge_search(
        &self,
        plugin: &str,
        index: &str,
        request: &Value,
        answers: Vec<ShardAnswer>,
    ) -> Option<Result<Value, HookError>> {
        let _ = (plugin, index, request, answers);
        None
    }

    /// Sees a read after its response was built, off the client's path. Failures are the
    /// implementation's to count and log.
    async fn after_response(&self, exchange: ReadExchange) {
        let _ = exchange;
    }

    /// Sees a write after it reached quorum, off the client's path.
    async fn on_write(&self, event: WriteEvent) {
        let _ = event;
    }
}

/// The port with no hook: what the gateway holds when no plugin declares one.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl HookPort for NoHooks {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_hooks_passes_everything_through() {
        let port = NoHooks;
        assert_eq!(port.hooks(), HookSet::default());
        assert!(!port.hooks().searches());
        let request = serde_json::json!({"q": "dune"});
        let plan = port.plan_search("movies", SearchRoute::Search, &request, None).await;
        assert_eq!(plan, Ok(SearchPlan::Decline));
        assert!(port.merge_search("p", "movies", &request, Vec::new()).await.is_none());
    }
}
