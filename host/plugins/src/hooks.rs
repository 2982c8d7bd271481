//! The loaded plugins as the gateway's [`HookPort`]: each hook goes to the plugins whose manifest
//! declares it, in load order.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use miroir_types::{
    HookError, HookPort, HookSet, NoHooks, ReadExchange, SearchPlan, SearchRoute, ShardAnswer,
    WriteEvent,
};
use serde_json::Value;

use crate::bindings::miroir::plugin::types;
use crate::error::PluginError;
use crate::runtime::PluginRuntime;

/// The [`HookPort`] over a [`PluginRuntime`]; see [`PluginRuntime::hook_port`].
#[derive(Debug)]
pub struct PluginHooks {
    runtime: Arc<PluginRuntime>,
    hooks: HookSet,
}

impl PluginRuntime {
    /// The hooks of the loaded plugins as the gateway's port. [`NoHooks`] when no plugin declares
    /// `plan-search`, `merge-search`, `after-response` or `on-write`, so that a gateway without
    /// such plugins does nothing for them on the request path.
    pub fn hook_port(self: &Arc<Self>) -> Arc<dyn HookPort> {
        let hooks = HookSet {
            plan_search: self.has_hook(types::Hook::PlanSearch),
            merge_search: self.has_hook(types::Hook::MergeSearch),
            after_response: self.has_hook(types::Hook::AfterResponse),
            on_write: self.has_hook(types::Hook::OnWrite),
        };
        if hooks == HookSet::default() {
            return Arc::new(NoHooks);
        }
        Arc::new(PluginHooks { runtime: Arc::clone(self), hooks })
    }
}

fn hook_error(error: PluginError) -> HookError {
    match error {
        PluginError::Rejected { plugin, status, code, message } => {
            HookError::Rejected { plugin, status, code, message }
        }
        other => HookError::Failed {
            plugin: other.plugin().unwrap_or_default().to_owned(),
            message: other.to_string(),
        },
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[async_trait]
impl HookPort for PluginHooks {
    fn hooks(&self) -> HookSet {
        self.hooks
    }

    async fn plan_search(
        &self,
        index: &str,
        route: SearchRoute,
        request: &Value,
        caller: Option<&str>,
    ) -> Result<SearchPlan, HookError> {
        self.runtime.plan_search(index, route, request, caller).await.map_err(hook_error)
    }

    async fn merge_search(
        &self,
        plugin: &str,
        index: &str,
        request: &Value,
        answers: Vec<ShardAnswer>,
    ) -> Option<Result<Value, HookError>> {
        Some(self.runtime.merge_search(plugin, index, request, &answers).await?.map_err(hook_error))
    }

    async fn after_response(&self, exchange: ReadExchange) {
        let request = types::Request {
            method: exchange.method,
            path: exchange.path,
            query: exchange.query,
            headers: exchange.headers,
            body: exchange.body,
        };
        let response = types::Response {
            status: exchange.status,
            headers: exchange.response_headers,
            body: exchange.response_body,
        };
        let timing = types::Timing {
            started_at_ms: exchange.started_at_ms,
            total_us: micros(exchange.total),
        };
        self.runtime.after_response(&request, &response, timing).await;
    }

    async fn on_write(&self, event: WriteEvent) {
        let event = types::WriteEvent {
            event_id: event.event_id,
            task_uid: event.task_uid,
            index: event.index,
            operation: event.operation,
            primary_keys: event.primary_keys,
            shards: event.shards,
            timestamp_ms: event.timestamp_ms,
            partial_update: event.partial_update,
            documents: event.documents.map(|d| d.to_string()),
        };
        self.runtime.on_write(&event).await;
    }
}
