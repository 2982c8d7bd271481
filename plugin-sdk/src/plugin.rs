//! The [`Plugin`] trait.

use serde_json::Value;

use crate::types::{
    HookError, Manifest, Request, Response, SearchPlan, SearchRoute, ShardResponse, Timing,
    WriteEvent,
};

/// A Miroir plugin. Implement [`Plugin::init`] and [`Plugin::manifest`], then only the hooks the
/// manifest declares: every other hook has a pass-through default and is never called by the
/// host anyway.
///
/// The host creates a new instance of the component after a call traps, runs over its deadline
/// or exceeds its memory cap, and calls [`Plugin::init`] again on it: keep state that must survive
/// in [`crate::kv`], not in `self`.
pub trait Plugin: Sized + 'static {
    /// Builds the plugin from its configuration (`plugins.custom[].config`, a JSON object). An
    /// error stops the gateway at boot with the message.
    fn init(config: Value) -> Result<Self, String>;

    /// The plugin's name, version, routes and hooks. Called once at load.
    fn manifest(&self) -> Manifest;

    /// Serves a request to one of the manifest's routes. Default: `404`.
    fn handle(&mut self, request: Request) -> Response {
        Response::error(404, "miroir_route_not_found", format!("no route {}", request.path))
    }

    /// Decides who serves a search of `index` (`route`: a search or a `similar` request;
    /// `request`: the client's body): [`SearchPlan::Decline`] leaves it to the next plugin and
    /// then the host, [`SearchPlan::Rewrite`] takes it with the request every shard is sent,
    /// [`SearchPlan::Answer`] answers it. The host asks the plugins with search hooks in load
    /// order; the first that does not decline takes the search. Searches this plugin runs
    /// through [`crate::search()`] never come back here. Default: decline.
    fn plan_search(
        &mut self,
        index: &str,
        route: SearchRoute,
        request: Value,
    ) -> Result<SearchPlan, HookError> {
        let _ = (index, route, request);
        Ok(SearchPlan::Decline)
    }

    /// Merges per-shard answers into one search response, for the searches this plugin took.
    /// `request` is the client's own request (each shard was sent what [`Plugin::plan_search`]
    /// rewrote it to, or the client's request when the manifest declares no `plan-search`); `responses` holds one
    /// answer per shard, in shard order, failed shards included. Default: an error, since the
    /// host only calls it when the manifest declares [`crate::Hook::MergeSearch`].
    fn merge_search(
        &mut self,
        index: &str,
        request: Value,
        responses: Vec<ShardResponse>,
    ) -> Result<Value, HookError> {
        let _ = (index, request, responses);
        Err(HookError::new(501, "miroir_plugin_failed", "merge-search is not implemented"))
    }

    /// Sees a read request and its response after the client got it. Default: nothing.
    fn after_response(&mut self, request: Request, response: Response, timing: Timing) {
        let _ = (request, response, timing);
    }

    /// Sees a client write after it reached quorum. Default: nothing.
    fn on_write(&mut self, event: WriteEvent) {
        let _ = event;
    }

    /// Called on a timer. Default: nothing.
    fn tick(&mut self) {}
}
