//! Wiring the plugin runtime into the gateway: the services plugins import (search and scatter
//! through the gateway's own scatter-gather, key-value data in the task store, metrics on
//! `/metrics`) and the routes plugins claim, served behind the same HTTP stack as every other
//! route. The plugins' hooks reach the request path through the hook port `serve` installs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use miroir_http::{AppState, HttpError};
use miroir_plugins::{HostCallError, MetricSample, PluginHost, PluginRuntime, ShardAnswer};
use miroir_types::ApiError;
use serde_json::Value;

/// The gateway's services as plugins see them.
pub struct GatewayHost {
    pub state: AppState,
    /// Where plugins' calls and their own metrics go (exported on `/metrics`).
    pub metrics: Arc<crate::plugin_metrics::PluginMetrics>,
}

/// An error of the gateway as a plugin receives it: the status, and the Meilisearch code and
/// message of the error body the client would have received.
async fn host_error(error: HttpError) -> HostCallError {
    let response = error.into_response();
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    match (body["code"].as_str(), body["message"].as_str()) {
        (Some(code), Some(message)) => HostCallError::new(status, code, message),
        _ => HostCallError::new(status, "internal", "the gateway could not serve the call"),
    }
}

fn store_error(error: miroir_store::StoreError) -> HostCallError {
    HostCallError::new(500, "internal", format!("task store: {error}"))
}

#[async_trait]
impl PluginHost for GatewayHost {
    async fn search(
        &self,
        plugin: &str,
        index: &str,
        request: Value,
    ) -> Result<Value, HostCallError> {
        match miroir_http::search::search_value(&self.state, plugin, index, request).await {
            Ok(answer) => Ok(answer),
            Err(error) => Err(host_error(error).await),
        }
    }

    async fn scatter(
        &self,
        index: &str,
        request: Value,
    ) -> Result<Vec<ShardAnswer>, HostCallError> {
        match miroir_http::search::scatter_answers(&self.state, index, request).await {
            Ok(answers) => Ok(answers),
            Err(error) => Err(host_error(error).await),
        }
    }

    async fn federated_search(&self, request: Value) -> Result<Value, HostCallError> {
        match miroir_http::federated::federated_search(&self.state, &request).await {
            Ok(answer) => Ok(answer),
            Err(error) => Err(host_error(error).await),
        }
    }

    async fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, HostCallError> {
        self.state.store().plugin_get(plugin, key).await.map_err(store_error)
    }

    async fn kv_put(&self, plugin: &str, key: &str, value: Vec<u8>) -> Result<(), HostCallError> {
        self.state.store().plugin_put(plugin, key, &value).await.map_err(store_error)
    }

    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), HostCallError> {
        self.state.store().plugin_delete(plugin, key).await.map(|_| ()).map_err(store_error)
    }

    async fn kv_list_prefix(
        &self,
        plugin: &str,
        prefix: &str,
    ) -> Result<Vec<String>, HostCallError> {
        self.state.store().plugin_list_keys(plugin, prefix).await.map_err(store_error)
    }

    fn record_metric(&self, plugin: &str, sample: MetricSample) {
        self.metrics.record(plugin, sample);
    }

    fn record_call(&self, plugin: &str, hook: &'static str, took: Duration, failed: bool) {
        self.metrics.call(plugin, hook, took, failed);
    }
}

/// Every route the loaded plugins claim, each answered by its plugin's `handle`.
pub fn plugin_routes(runtime: Arc<PluginRuntime>) -> Router<AppState> {
    let mut router = Router::new();
    for (route, plugin) in runtime.routes() {
        let Ok(filter) = route.method.parse::<axum::http::Method>().map(MethodFilter::try_from)
        else {
            tracing::warn!(plugin, method = %route.method, "plugin route with an unknown method");
            continue;
        };
        let Ok(filter) = filter else { continue };
        let runtime = Arc::clone(&runtime);
        router = router.route(
            &route.path,
            on(filter, move |request: Request| handle(Arc::clone(&runtime), request)),
        );
    }
    router
}

/// One request to a plugin route.
async fn handle(runtime: Arc<PluginRuntime>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION)
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let plugin_request = miroir_plugins::Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers,
        body: body.to_vec(),
    };
    match runtime.handle(plugin_request).await {
        Ok(answer) => {
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() =
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut has_type = false;
            for (name, value) in answer.headers {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::try_from(name), HeaderValue::try_from(value))
                {
                    has_type |= name == header::CONTENT_TYPE;
                    response.headers_mut().insert(name, value);
                }
            }
            if !has_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            response
        }
        Err(error) => {
            tracing::warn!(%error, "plugin call failed");
            let code = error.error_code().unwrap_or(miroir_types::ErrorCode::MiroirPluginFailed);
            let api = ApiError::new(code, error.to_string());
            let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, [(header::CONTENT_TYPE, "application/json")], api.to_body()).into_response()
        }
    }
}
