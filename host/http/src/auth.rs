//! Authentication: the master key on the Meilisearch API, the admin key on `/_miroir/*` (except
//! the `/_miroir/ready` probe, open like `/health`), and API keys created through Miroir (which
//! exist on every node with the same value).
//!
//! Keys are compared in constant time. Without a master key every route is open (development
//! mode). A request made with an API key is accepted when that key exists on the nodes and its
//! `actions` and `indexes` allow the route; Miroir then forwards the client's own
//! `Authorization` header to the nodes, so they enforce the key exactly as one node would.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use miroir_cluster::NodeAuth;
use miroir_types::{ApiError, ErrorCode, NodeId};
use subtle::ConstantTimeEq;

use crate::error::HttpError;
use crate::AppState;

/// Who is calling, as decided by the auth layer; handlers read it from the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No master key is configured: everything is open.
    Open,
    /// The master key.
    Master,
    /// An API key or tenant token; the value is the whole `Authorization` header, forwarded.
    Key(String),
    /// An API key limited to some indexes (`indexes` patterns, `*` suffix allowed), forwarded.
    ScopedKey {
        /// The whole `Authorization` header.
        header: String,
        /// The key's `indexes`.
        indexes: Vec<String>,
    },
}

impl Caller {
    /// Whether this caller may see index `uid` (in listings Miroir answers itself).
    pub fn sees_index(&self, uid: &str) -> bool {
        match self {
            Caller::ScopedKey { indexes, .. } => index_allowed(indexes, uid),
            Caller::Open | Caller::Master | Caller::Key(_) => true,
        }
    }

    /// The credentials nodes receive on this caller's behalf.
    pub fn node_auth(&self) -> NodeAuth<'_> {
        match self {
            Caller::Key(header) | Caller::ScopedKey { header, .. } => NodeAuth::Client(header),
            Caller::Open | Caller::Master => NodeAuth::NodeKey,
        }
    }
}

/// What Miroir knows about an API key: its rights.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyRights {
    actions: Vec<String>,
    indexes: Vec<String>,
}

/// API keys by value, refreshed from a node's `GET /keys` when an unknown key shows up — at most
/// once per [`REFRESH_EVERY`], so a flood of bad keys cannot turn into a flood of node calls.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<HashMap<String, KeyRights>>,
    refreshed_at: Mutex<Option<Instant>>,
    /// Nodes known to hold Miroir's default keys (see [`crate::default_keys`]).
    defaults_ensured: Mutex<HashSet<NodeId>>,
}

/// The least time between two refreshes of the key cache (keys changed through Miroir clear
/// the cache at once; keys created directly on the nodes are seen within this delay).
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);

impl KeyCache {
    fn get(&self, key: &str) -> Option<KeyRights> {
        self.keys.read().expect("key cache poisoned").get(key).cloned()
    }

    /// Whether `node` is known to hold Miroir's default keys.
    pub fn defaults_ensured(&self, node: &NodeId) -> bool {
        self.defaults_ensured.lock().expect("key cache poisoned").contains(node)
    }

    /// Records that `node` holds Miroir's default keys.
    pub fn mark_defaults_ensured(&self, node: &NodeId) {
        self.defaults_ensured.lock().expect("key cache poisoned").insert(node.clone());
    }

    /// Forgets every key (after a key was changed or deleted through Miroir).
    pub fn clear(&self) {
        self.keys.write().expect("key cache poisoned").clear();
        *self.refreshed_at.lock().expect("key cache poisoned") = None;
    }

    async fn refresh(&self, state: &AppState) -> Result<(), HttpError> {
        {
            let mut last = self.refreshed_at.lock().expect("key cache poisoned");
            if last.is_some_and(|at| at.elapsed() < REFRESH_EVERY) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        crate::default_keys::ensure(state).await;
        let nodes: Vec<_> = state.topology().nodes().cloned().collect();
        let response = crate::fanout::first_answer(
            state,
            NodeAuth::NodeKey,
            nodes,
            Method::GET,
            "/keys?limit=100000",
            None,
        )
        .await?;
        let json = response.json();
        let mut fresh = HashMap::new();
        let keys = json.get("results").and_then(|r| r.as_array()).into_iter().flatten();
        // A node's own default key is valid on that node only: refused like an unknown key.
        for key in keys.filter(|key| !crate::default_keys::is_node_default(key)) {
            let list = |field: &str| -> Vec<String> {
                key.get(field)
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default()
            };
            if let Some(value) = key.get("key").and_then(|k| k.as_str()) {
                fresh.insert(
                    value.to_owned(),
                    KeyRights { actions: list("actions"), indexes: list("indexes") },
                );
            }
        }
        *self.keys.write().expect("key cache poisoned") = fresh;
        Ok(())
    }
}

/// Constant-time equality of a presented key and a configured one.
fn same_key(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// What the auth decision needs from a request (owned: a request body is not `Sync`).
struct Presented {
    method: Method,
    path: String,
    authorization: Option<Result<String, ()>>,
}

fn bearer(request: &Presented) -> Result<Option<&str>, HttpError> {
    let Some(value) = &request.authorization else { return Ok(None) };
    let value = value.as_deref().map_err(|_| ApiError::invalid_api_key())?;
    // Meilisearch reads only a bearer token: any other scheme (`Basic ...`) counts as no
    // `Authorization` header at all (401 `missing_authorization_header`).
    match value.strip_prefix("Bearer ") {
        Some(token) => Ok(Some(token.trim())),
        None => Err(ApiError::missing_authorization_header().into()),
    }
}

/// The auth layer.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = Presented {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
        authorization: request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned).map_err(|_| ())),
    };
    match decide(&state, &presented).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

async fn decide(state: &AppState, request: &Presented) -> Result<Caller, HttpError> {
    let path = request.path.as_str();
    let secrets = &state.config().secrets;
    if path == "/health" || path == "/_miroir/ready" || crate::search_ui::serves(state, path) {
        return Ok(Caller::Open);
    }
    // `/_indexes/...` is the operator's guide's path for exports: an admin route too.
    if path.starts_with("/_miroir/") || path == "/_miroir" || path.starts_with("/_indexes/") {
        let Some(admin) = secrets.admin_api_key.as_ref().or(secrets.master_key.as_ref()) else {
            return Ok(Caller::Open);
        };
        return match bearer(request).ok().flatten() {
            Some(token) if same_key(token, admin.expose()) => Ok(Caller::Master),
            _ => Err(ApiError::new(
                ErrorCode::MiroirInvalidAuth,
                "The admin API key is missing or invalid.",
            )
            .into()),
        };
    }
    let Some(master) = secrets.master_key.as_ref() else { return Ok(Caller::Open) };
    let Some(token) = bearer(request)? else {
        return Err(ApiError::missing_authorization_header().into());
    };
    if same_key(token, master.expose()) {
        return Ok(Caller::Master);
    }
    let header = format!("Bearer {token}");
    if looks_like_tenant_token(token) {
        // The nodes verify the token's signature and rules on every request it is forwarded
        // with; Miroir accepts it only on routes that reach nodes with the client's header.
        return if is_search_route(&request.method, path) {
            Ok(Caller::Key(header))
        } else {
            Err(ApiError::invalid_api_key().into())
        };
    }
    let rights = match state.keys().get(token) {
        Some(rights) => rights,
        None => {
            state.keys().refresh(state).await?;
            state.keys().get(token).ok_or_else(ApiError::invalid_api_key)?
        }
    };
    if allows(&rights, &request.method, path) {
        if rights.indexes.iter().any(|i| i == "*") {
            Ok(Caller::Key(header))
        } else {
            Ok(Caller::ScopedKey { header, indexes: rights.indexes })
        }
    } else {
        Err(ApiError::invalid_api_key().into())
    }
}

/// The caller a request to `path` presenting `authorization` is, decided as for a client (the
/// search page presents its own key this way).
pub(crate) async fn caller_for(
    state: &AppState,
    method: Method,
    path: &str,
    authorization: &str,
) -> Result<Caller, HttpError> {
    let presented = Presented {
        method,
        path: path.to_owned(),
        authorization: Some(Ok(authorization.to_owned())),
    };
    decide(state, &presented).await
}

fn looks_like_tenant_token(token: &str) -> bool {
    token.split('.').count() == 3
}

fn is_search_route(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        (method, segments.as_slice()),
        (_, ["indexes", _, "search"] | ["indexes", _, "similar"])
            | (&Method::POST, ["multi-search"] | ["indexes", _, "facet-search"])
    )
}

/// The action and index a request needs, as Meilisearch names them.
fn required(method: &Method, path: &str) -> (String, Option<String>) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let index = match segments.as_slice() {
        ["indexes", uid, ..] => Some((*uid).to_owned()),
        _ => None,
    };
    let action = match (method, segments.as_slice()) {
        (_, ["indexes", _, "search"]) | (_, ["indexes", _, "facet-search"]) => "search",
        (_, ["indexes", _, "similar"]) | (_, ["multi-search"]) => "search",
        (&Method::GET, ["indexes", _, "documents", ..]) => "documents.get",
        (&Method::POST, ["indexes", _, "documents", "fetch"]) => "documents.get",
        (&Method::POST, ["indexes", _, "documents", "delete-batch"]) => "documents.delete",
        (&Method::POST, ["indexes", _, "documents", "delete"]) => "documents.delete",
        // Editing by function needs every document right, as on one node.
        (&Method::POST, ["indexes", _, "documents", "edit"]) => "documents.*",
        (&Method::DELETE, ["indexes", _, "documents", ..]) => "documents.delete",
        (_, ["indexes", _, "documents", ..]) => "documents.add",
        (&Method::GET, ["indexes", _, "settings", ..]) => "settings.get",
        (_, ["indexes", _, "settings", ..]) => "settings.update",
        (_, ["indexes", _, "stats"]) | (_, ["stats"]) => "stats.get",
        (&Method::POST, ["indexes", _, "compact"]) => "indexes.compact",
        (&Method::POST, ["indexes", _, "fields"]) => "indexes.get",
        (&Method::GET, ["indexes", ..]) => "indexes.get",
        (&Method::POST, ["indexes"]) => "indexes.create",
        (&Method::PATCH, ["indexes", _]) => "indexes.update",
        (&Method::DELETE, ["indexes", _]) => "indexes.delete",
        (_, ["swap-indexes"]) => "indexes.swap",
        (&Method::GET, ["tasks", ..]) | (&Method::GET, ["batches", ..]) => "tasks.get",
        (&Method::GET, ["keys", ..]) => "keys.get",
        (&Method::POST, ["keys"]) => "keys.create",
        (&Method::PATCH, ["keys", _]) => "keys.update",
        (&Method::DELETE, ["keys", _]) => "keys.delete",
        (&Method::POST, ["dumps"]) => "dumps.create",
        (&Method::POST, ["snapshots"]) => "snapshots.create",
        (&Method::GET, ["experimental-features"]) => "experimental.get",
        (&Method::PATCH, ["experimental-features"]) => "experimental.update",
        (&Method::GET, ["webhooks", ..]) => "webhooks.get",
        (&Method::POST, ["webhooks"]) => "webhooks.create",
        (&Method::PATCH, ["webhooks", _]) => "webhooks.update",
        (&Method::DELETE, ["webhooks", _]) => "webhooks.delete",
        (&Method::POST, ["tasks", "cancel"]) => "tasks.cancel",
        (&Method::DELETE, ["tasks"]) => "tasks.delete",
        (_, ["version"]) => "version",
        _ => "*",
    };
    (action.to_owned(), index)
}

fn allows(rights: &KeyRights, method: &Method, path: &str) -> bool {
    let (action, index) = required(method, path);
    let family = action.split('.').next().unwrap_or_default();
    let action_ok =
        rights.actions.iter().any(|a| a == "*" || *a == action || *a == format!("{family}.*"));
    let index_ok = index.is_none_or(|uid| index_allowed(&rights.indexes, &uid));
    action_ok && index_ok
}

/// Whether `uid` matches one of a key's `indexes` patterns.
fn index_allowed(patterns: &[String], uid: &str) -> bool {
    patterns.iter().any(|pattern| match pattern.strip_suffix('*') {
        Some(prefix) => uid.starts_with(prefix),
        None => pattern == uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(actions: &[&str], indexes: &[&str]) -> KeyRights {
        KeyRights {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            indexes: indexes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn key_rights_follow_meilisearch_actions_and_index_patterns() {
        let search = rights(&["search"], &["prod*"]);
        assert!(allows(&search, &Method::POST, "/indexes/products/search"));
        assert!(!allows(&search, &Method::POST, "/indexes/movies/search"));
        assert!(!allows(&search, &Method::POST, "/indexes/products/documents"));
        let docs = rights(&["documents.*"], &["*"]);
        assert!(allows(&docs, &Method::POST, "/indexes/a/documents"));
        assert!(allows(&docs, &Method::DELETE, "/indexes/a/documents/1"));
        assert!(!allows(&docs, &Method::GET, "/tasks"));
        assert!(allows(&docs, &Method::POST, "/indexes/a/documents/edit"));
        let add = rights(&["documents.add", "documents.delete"], &["*"]);
        assert!(!allows(&add, &Method::POST, "/indexes/a/documents/edit"));
        let keys = rights(&["keys.get", "keys.create"], &["*"]);
        assert!(allows(&keys, &Method::GET, "/keys"));
        assert!(allows(&keys, &Method::POST, "/keys"));
        assert!(!allows(&keys, &Method::DELETE, "/keys/abc"));
        assert!(!allows(&rights(&["search"], &["*"]), &Method::GET, "/keys"));
    }

    #[test]
    fn keys_compare_in_constant_time_and_exactly() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abc", "abd"));
        assert!(!same_key("ab", "abc"));
    }
}
