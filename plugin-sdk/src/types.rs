//! The plain Rust types a plugin sees, and their conversions to and from the WIT bindings.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::wit::miroir::plugin::types as wit;

/// An HTTP method a route can be claimed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method in upper case, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route a plugin serves with [`crate::Plugin::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The method in upper case.
    pub method: String,
    /// The exact path, e.g. `/_miroir/x/top-facets`.
    pub path: String,
}

/// A hook a plugin implements; see [`crate::Plugin`] for what each one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// [`crate::Plugin::handle`]. Added by [`Manifest::route`].
    Handle,
    /// [`crate::Plugin::plan_search`].
    PlanSearch,
    /// [`crate::Plugin::merge_search`].
    MergeSearch,
    /// [`crate::Plugin::after_response`].
    AfterResponse,
    /// [`crate::Plugin::on_write`].
    OnWrite,
    /// [`crate::Plugin::tick`].
    Tick,
}

/// What a plugin tells the host about itself: name, version, routes and hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The plugin's name, for logs.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The routes served by `handle`.
    pub routes: Vec<Route>,
    /// The hooks implemented. The host calls no other.
    pub hooks: Vec<Hook>,
}

impl Manifest {
    /// A manifest with no route and no hook.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Manifest {
            name: name.into(),
            version: version.into(),
            routes: Vec::new(),
            hooks: Vec::new(),
        }
    }

    /// Claims `method path` for [`crate::Plugin::handle`] (and declares [`Hook::Handle`]).
    pub fn route(mut self, method: Method, path: impl Into<String>) -> Self {
        self.routes.push(Route { method: method.as_str().to_owned(), path: path.into() });
        self.hook(Hook::Handle)
    }

    /// Declares that the plugin implements `hook`.
    pub fn hook(mut self, hook: Hook) -> Self {
        if !self.hooks.contains(&hook) {
            self.hooks.push(hook);
        }
        self
    }
}

/// A client's HTTP request to one of the plugin's routes, or a read seen by `after_response`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The method in upper case.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The headers, names in lower case, credentials removed.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// A response to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The headers. `content-type: application/json` is assumed when absent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: &Value) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.into().into_bytes(),
        }
    }

    /// An error in Meilisearch's shape: `{message, code, type, link}`.
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Response::json(status, &HookError::new(status, code, message).to_json())
    }

    /// The body parsed as JSON.
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// One shard's answer to a search, from [`crate::scatter()`] or given to `merge_search`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardResponse {
    /// The shard number.
    pub shard: u32,
    /// The node that answered.
    pub node: String,
    /// The node's HTTP status; `0` when it could not be reached.
    pub status: u16,
    /// The node's JSON body.
    pub body: Value,
    /// How long the node took, in microseconds.
    pub took_us: u64,
}

/// How long a request took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Arrival time, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Time to the last byte of the response, in microseconds.
    pub total_us: u64,
}

/// A client write that reached quorum.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteEvent {
    /// Stable id of the event.
    pub event_id: String,
    /// The Miroir task uid.
    pub task_uid: u64,
    /// The index written to.
    pub index: String,
    /// The operation, e.g. `documentAdditionOrUpdate`.
    pub operation: String,
    /// Primary keys of the touched documents, when known.
    pub primary_keys: Vec<String>,
    /// The shards written.
    pub shards: Vec<u32>,
    /// When the write reached quorum, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// For `documentAdditionOrUpdate`: `true` when the documents were sent with `PUT` (their
    /// fields merge into the stored documents), `false` with `POST` (they replace them).
    pub partial_update: bool,
    /// The written documents (a JSON array), when the host includes them.
    pub documents: Option<Value>,
}

/// An error returned by a hook; the client gets it in Meilisearch's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookError {
    /// The HTTP status, e.g. `400`.
    pub status: u16,
    /// A Meilisearch-style code, e.g. `invalid_search_q`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

impl HookError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        HookError { status, code: code.to_owned(), message: message.into() }
    }

    /// Meilisearch's error object: `{message, code, type, link}`. The type follows the status:
    /// `auth` for 401 and 403, `system` for 503 and 504 (the system around the server failed or
    /// was too slow), `internal` for other 5xx, `invalid_request` otherwise.
    pub fn to_json(&self) -> Value {
        let kind = match self.status {
            401 | 403 => "auth",
            503 | 504 => "system",
            500.. => "internal",
            _ => "invalid_request",
        };
        serde_json::json!({
            "message": self.message,
            "code": self.code,
            "type": kind,
            "link": format!("https://docs.meilisearch.com/errors#{}", self.code),
        })
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for HookError {}

/// Which read [`crate::Plugin::plan_search`] is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchRoute {
    /// `/indexes/{index}/search`, and the searches of other plugins' [`crate::search()`].
    Search,
    /// `/indexes/{index}/similar`: the request is the `similar` body.
    Similar,
}

/// What [`crate::Plugin::plan_search`] decides for one search.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchPlan {
    /// Not this plugin's search: the next plugin is asked, then the host's own path serves it
    /// (and this plugin's `merge_search` is not called for it).
    Decline,
    /// The plugin takes the search: every shard is sent this request instead of the client's,
    /// and the answers are merged by the plugin's `merge_search` when its manifest declares
    /// [`Hook::MergeSearch`], else by the host's default merge.
    Rewrite(Value),
    /// The plugin answered the search itself (e.g. with [`crate::search()`]): `body` is the
    /// client's answer (status 200), with `headers` added.
    Answer {
        /// The Meilisearch response body.
        body: Value,
        /// Response headers to add, e.g. `("x-miroir-over-fetch", "3")`.
        headers: Vec<(String, String)>,
    },
}

impl SearchPlan {
    /// An answer without extra headers.
    pub fn answer(body: Value) -> Self {
        SearchPlan::Answer { body, headers: Vec::new() }
    }
}

impl From<wit::SearchRoute> for SearchRoute {
    fn from(route: wit::SearchRoute) -> Self {
        match route {
            wit::SearchRoute::Search => SearchRoute::Search,
            wit::SearchRoute::Similar => SearchRoute::Similar,
        }
    }
}

impl From<SearchPlan> for wit::SearchPlan {
    fn from(plan: SearchPlan) -> Self {
        match plan {
            SearchPlan::Decline => wit::SearchPlan::Decline,
            SearchPlan::Rewrite(request) => wit::SearchPlan::Rewrite(request.to_string()),
            SearchPlan::Answer { body, headers } => {
                wit::SearchPlan::Answer(wit::SearchAnswer { body: body.to_string(), headers })
            }
        }
    }
}

/// Why a host function failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    /// The HTTP status Miroir would answer a client with for this error (e.g. `404`).
    pub status: u16,
    /// A machine-readable code, e.g. `index_not_found` or `http_target_not_allowed`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for HostError {}

impl HostError {
    /// The error as a response in Meilisearch's shape, with its status (502 when it has none).
    pub fn to_response(&self) -> Response {
        let status = if self.status == 0 { 502 } else { self.status };
        Response::error(status, &self.code, self.message.clone())
    }
}

impl From<wit::HostError> for HostError {
    fn from(e: wit::HostError) -> Self {
        HostError { status: e.status, code: e.code, message: e.message }
    }
}

impl From<wit::Request> for Request {
    fn from(r: wit::Request) -> Self {
        Request { method: r.method, path: r.path, query: r.query, headers: r.headers, body: r.body }
    }
}

impl From<Response> for wit::Response {
    fn from(r: Response) -> Self {
        wit::Response { status: r.status, headers: r.headers, body: r.body }
    }
}

impl From<wit::Response> for Response {
    fn from(r: wit::Response) -> Self {
        Response { status: r.status, headers: r.headers, body: r.body }
    }
}

impl From<wit::ShardResponse> for ShardResponse {
    fn from(r: wit::ShardResponse) -> Self {
        // A body that is not JSON (a proxy's HTML error page) is kept as a string.
        let body = serde_json::from_str(&r.body).unwrap_or(Value::String(r.body));
        ShardResponse { shard: r.shard, node: r.node, status: r.status, body, took_us: r.took_us }
    }
}

impl From<wit::Timing> for Timing {
    fn from(t: wit::Timing) -> Self {
        Timing { started_at_ms: t.started_at_ms, total_us: t.total_us }
    }
}

impl From<wit::WriteEvent> for WriteEvent {
    fn from(e: wit::WriteEvent) -> Self {
        WriteEvent {
            event_id: e.event_id,
            task_uid: e.task_uid,
            index: e.index,
            operation: e.operation,
            primary_keys: e.primary_keys,
            shards: e.shards,
            timestamp_ms: e.timestamp_ms,
            partial_update: e.partial_update,
            documents: e.documents.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

impl From<HookError> for wit::HookError {
    fn from(e: HookError) -> Self {
        wit::HookError { status: e.status, code: e.code, message: e.message }
    }
}

impl From<Hook> for wit::Hook {
    fn from(h: Hook) -> Self {
        match h {
            Hook::Handle => wit::Hook::Handle,
            Hook::PlanSearch => wit::Hook::PlanSearch,
            Hook::MergeSearch => wit::Hook::MergeSearch,
            Hook::AfterResponse => wit::Hook::AfterResponse,
            Hook::OnWrite => wit::Hook::OnWrite,
            Hook::Tick => wit::Hook::Tick,
        }
    }
}

impl From<Manifest> for wit::Manifest {
    fn from(m: Manifest) -> Self {
        wit::Manifest {
            name: m.name,
            version: m.version,
            routes: m
                .routes
                .into_iter()
                .map(|r| wit::Route { method: r.method, path: r.path })
                .collect(),
            hooks: m.hooks.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        let request =
            Request { query: "index=my%20movies&facet=genre&x".into(), ..Request::default() };
        assert_eq!(request.query_param("index").as_deref(), Some("my movies"));
        assert_eq!(request.query_param("facet").as_deref(), Some("genre"));
        assert_eq!(request.query_param("x").as_deref(), Some(""));
        assert_eq!(request.query_param("missing"), None);
    }

    #[test]
    fn a_route_declares_the_handle_hook_once() {
        let manifest = Manifest::new("p", "1.0.0")
            .route(Method::Get, "/a")
            .route(Method::Post, "/b")
            .hook(Hook::Tick);
        assert_eq!(manifest.hooks, vec![Hook::Handle, Hook::Tick]);
        assert_eq!(manifest.routes[1], Route { method: "POST".into(), path: "/b".into() });
    }

    #[test]
    fn errors_have_meilisearch_shape() {
        let body = Response::error(400, "invalid_search_q", "bad q").body_json::<Value>().unwrap();
        assert_eq!(body["code"], "invalid_search_q");
        assert_eq!(body["type"], "invalid_request");
        assert_eq!(body["link"], "https://docs.meilisearch.com/errors#invalid_search_q");
    }
}
