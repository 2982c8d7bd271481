//! Pooled keep-alive HTTP clients to the nodes.
//!
//! One `reqwest::Client` (hyper underneath) is shared by every node, so connections are pooled
//! per host and reused across requests. Every call has a time limit; a node that does not answer
//! in time is reported as [`NodeError::Timeout`], one that cannot be reached as
//! [`NodeError::Unreachable`]. Any HTTP answer, error statuses included, is a [`NodeResponse`]:
//! deciding what a node's 4xx means is the caller's job.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use miroir_types::NodeId;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
pub use reqwest::Method;
use tracing::Instrument as _;

use crate::health::HealthRegistry;
use crate::trace_context::{self, RequestFigures};

/// The header carrying the client request's id to the nodes.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The client request a node request is made for.
struct RequestScope {
    id: String,
    figures: Arc<RequestFigures>,
}

tokio::task_local! {
    static REQUEST: RequestScope;
    static SHARDS: usize;
}

/// Runs `future` with `id` as the request id every node request made inside it carries (as
/// `X-Request-Id`), so a node's log lines can be matched with the client request.
pub async fn with_request_id<F: std::future::Future>(id: String, future: F) -> F::Output {
    with_request(id, RequestFigures::new(), future).await
}

/// [`with_request_id`], counting the node requests made inside `future` in `figures`.
pub async fn with_request<F: std::future::Future>(
    id: String,
    figures: Arc<RequestFigures>,
    future: F,
) -> F::Output {
    REQUEST.scope(RequestScope { id, figures }, future).await
}

/// Runs `future` (one node request) as asking for `shards` shards, which its span reports.
pub async fn for_shards<F: std::future::Future>(shards: usize, future: F) -> F::Output {
    SHARDS.scope(shards, future).await
}

/// Why a node gave no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The connection failed or broke before an answer arrived.
    #[error("node `{node}` is unreachable: {reason}")]
    Unreachable {
        /// The node.
        node: NodeId,
        /// What failed, for the log.
        reason: String,
    },
    /// The node did not answer within the time limit.
    #[error("node `{node}` did not answer within {timeout:?}")]
    Timeout {
        /// The node.
        node: NodeId,
        /// The limit that ran out.
        timeout: Duration,
    },
    /// The topology names a node Miroir has no client for.
    #[error("no client for node `{0}`")]
    UnknownNode(NodeId),
}

/// An HTTP answer from a node, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body, byte for byte.
    pub body: Bytes,
}

impl NodeResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, `Null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A request body with its content type: one buffer, or parts sent one after the other (a
/// body assembled from slices of a client's body, sent without copying them together).
#[derive(Debug, Clone)]
pub struct NodeBody {
    /// The `Content-Type` header.
    pub content_type: &'static str,
    parts: std::sync::Arc<[Bytes]>,
    len: usize,
}

impl NodeBody {
    /// A JSON body.
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        NodeBody::new("application/json", bytes)
    }

    /// A body of `content_type`.
    pub fn new(content_type: &'static str, bytes: impl Into<Bytes>) -> Self {
        NodeBody::from_parts(content_type, vec![bytes.into()])
    }

    /// A body made of `parts`, in order.
    pub fn from_parts(content_type: &'static str, parts: Vec<Bytes>) -> Self {
        let len = parts.iter().map(Bytes::len).sum();
        NodeBody { content_type, parts: parts.into(), len }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body in one buffer (copied when it has several parts).
    pub fn to_bytes(&self) -> Bytes {
        match &*self.parts {
            [one] => one.clone(),
            parts => {
                let mut whole = Vec::with_capacity(self.len);
                for part in parts {
                    whole.extend_from_slice(part);
                }
                Bytes::from(whole)
            }
        }
    }

    /// The body as reqwest sends it: one buffer, or its parts streamed with their total length.
    fn into_request_body(self) -> reqwest::Body {
        if self.parts.len() <= 1 {
            return reqwest::Body::from(self.to_bytes());
        }
        let parts = self.parts;
        let stream = futures_util::stream::iter(
            (0..parts.len()).map(move |i| Ok::<Bytes, std::convert::Infallible>(parts[i].clone())),
        );
        reqwest::Body::wrap_stream(stream)
    }
}

/// Which credentials a request to a node carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAuth<'a> {
    /// The node key from configuration (or nothing when none is configured).
    NodeKey,
    /// A client's own `Authorization` header value, so the node enforces that key's rights.
    Client(&'a str),
}

/// The client of one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    id: NodeId,
    base: String,
    key: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
    /// Told of every answer, so a node answering requests counts as alive.
    health: Option<Arc<HealthRegistry>>,
}

impl NodeClient {
    /// The node this client talks to.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The node's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `method path` (path with its query string) and returns the node's answer, with the
    /// client's default time limit.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<NodeBody>,
        auth: NodeAuth<'_>,
    ) -> Result<NodeResponse, NodeError> {
        self.send_with_timeout(method, path, body, auth, self.timeout).await
    }

    /// [`NodeClient::send`] with an explicit time limit.
    pub async fn send_with_timeout(
        &self,
        method: Method,
        path: &str,
        body: Option<NodeBody>,
        auth: NodeAuth<'_>,
        timeout: Duration,
    ) -> Result<NodeResponse, NodeError> {
        let span = tracing::info_span!(
            "node_call",
            otel.name = %format_args!("node {} {}", self.id, method),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            node = %self.id,
            http.request.method = %method,
            url.path = path.split('?').next().unwrap_or(path),
            shards = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            response_bytes = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        if let Ok(shards) = SHARDS.try_with(|shards| *shards) {
            span.record("shards", shards);
        }
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        for (name, value) in trace_context::headers_for(&span) {
            request = request.header(name, value);
        }
        match auth {
            NodeAuth::NodeKey => {
                if let Some(key) = &self.key {
                    request = request.header(AUTHORIZATION, format!("Bearer {key}"));
                }
            }
            NodeAuth::Client(header) => request = request.header(AUTHORIZATION, header),
        }
        let request_id = REQUEST.try_with(|scope| {
            scope.figures.count_node_call();
            scope.id.clone()
        });
        if let Ok(id) = request_id {
            request = request.header(REQUEST_ID_HEADER, id);
        }
        if let Some(body) = body {
            // The length is sent even for a body in parts (no chunked encoding).
            request = request
                .header(CONTENT_TYPE, body.content_type)
                .header(reqwest::header::CONTENT_LENGTH, body.len())
                .body(body.into_request_body());
        }
        let started = Instant::now();
        let response = async {
            let response = request.timeout(timeout).send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>(NodeResponse { status, body })
        };
        let response = response.instrument(span.clone()).await;
        match &response {
            Ok(answer) => {
                span.record("http.response.status_code", answer.status);
                span.record("response_bytes", answer.body.len());
                if answer.status >= 500 {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(error) => {
                span.record("error", tracing::field::display(error));
                span.record("otel.status_code", "ERROR");
            }
        }
        if let (Some(health), Ok(answer)) = (&self.health, &response) {
            if answer.status < 500 {
                health.answered(&self.id, started.elapsed());
            }
        }
        response.map_err(|error| {
            if error.is_timeout() {
                NodeError::Timeout { node: self.id.clone(), timeout }
            } else {
                NodeError::Unreachable { node: self.id.clone(), reason: error.to_string() }
            }
        })
    }
}

/// The clients of every node, sharing one connection pool.
#[derive(Debug, Clone, Default)]
pub struct NodeClients {
    by_id: BTreeMap<NodeId, NodeClient>,
    http: reqwest::Client,
    key: Option<String>,
    timeout: Duration,
    health: Option<Arc<HealthRegistry>>,
}

impl NodeClients {
    /// Clients for `nodes` (id, base URL), sending `node_key` as a bearer token and giving up
    /// on a request after `timeout`. Fails only if the TLS/HTTP stack cannot be set up.
    pub fn new(
        nodes: impl IntoIterator<Item = (NodeId, String)>,
        node_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, NodeError> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| NodeError::Unreachable {
                node: NodeId::new("client").expect("a valid literal id"),
                reason: e.to_string(),
            })?;
        let empty =
            NodeClients { by_id: BTreeMap::new(), http, key: node_key, timeout, health: None };
        Ok(empty.with_nodes(nodes))
    }

    /// Clients for `nodes` sharing this set's connection pool, key, timeout and health
    /// registry (the fleet changed).
    pub fn with_nodes(&self, nodes: impl IntoIterator<Item = (NodeId, String)>) -> Self {
        let by_id = nodes
            .into_iter()
            .map(|(id, base)| {
                let base = base.trim_end_matches('/').to_owned();
                let client = NodeClient {
                    id: id.clone(),
                    base,
                    key: self.key.clone(),
                    http: self.http.clone(),
                    timeout: self.timeout,
                    health: self.health.clone(),
                };
                (id, client)
            })
            .collect();
        NodeClients {
            by_id,
            http: self.http.clone(),
            key: self.key.clone(),
            timeout: self.timeout,
            health: self.health.clone(),
        }
    }

    /// The clients, each telling `health` when its node answers (see
    /// [`HealthRegistry::answered`]).
    pub fn observed_by(mut self, health: Arc<HealthRegistry>) -> Self {
        for client in self.by_id.values_mut() {
            client.health = Some(Arc::clone(&health));
        }
        self.health = Some(health);
        self
    }

    /// The client of `node`.
    pub fn get(&self, node: &NodeId) -> Result<&NodeClient, NodeError> {
        self.by_id.get(node).ok_or_else(|| NodeError::UnknownNode(node.clone()))
    }

    /// Every client, by node id.
    pub fn iter(&self) -> impl Iterator<Item = &NodeClient> {
        self.by_id.values()
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(address: String, timeout: Duration) -> NodeClients {
        let id = NodeId::new("n1").expect("id");
        NodeClients::new([(id, address)], Some("node-key".into()), timeout).expect("clients")
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        drop(listener);
        let clients = clients(format!("http://{address}/"), Duration::from_secs(5));
        let client = clients.get(&NodeId::new("n1").expect("id")).expect("client");
        assert_eq!(client.base_url(), format!("http://{address}"));
        let error = client.send(Method::GET, "/health", None, NodeAuth::NodeKey).await;
        assert!(matches!(error, Err(NodeError::Unreachable { .. })), "{error:?}");
    }

    #[tokio::test]
    async fn requests_carry_the_node_key_and_the_request_id() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buffer = vec![0; 4096];
            let n = socket.read(&mut buffer).await.expect("read");
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .expect("write");
            String::from_utf8_lossy(&buffer[..n]).to_lowercase()
        });
        let clients = clients(format!("http://{address}"), Duration::from_secs(5));
        let client = clients.get(&NodeId::new("n1").expect("id")).expect("client");
        let call = client.send(Method::GET, "/health", None, NodeAuth::NodeKey);
        let response = with_request_id("req-42".into(), call).await.expect("answer");
        assert!(response.is_success());
        let request = server.await.expect("server");
        assert!(request.contains("authorization: bearer node-key"), "{request}");
        assert!(request.contains("x-request-id: req-42"), "{request}");
    }

    #[tokio::test]
    async fn a_silent_node_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let clients = clients(format!("http://{address}"), Duration::from_millis(200));
        let client = clients.get(&NodeId::new("n1").expect("id")).expect("client");
        let error = client.send(Method::GET, "/health", None, NodeAuth::NodeKey).await;
        assert!(matches!(error, Err(NodeError::Timeout { .. })), "{error:?}");
        hold.abort();
        assert!(clients.get(&NodeId::new("other").expect("id")).is_err());
    }
}
