//! The tower stack, called without a socket: request ids, the body limit on streamed bodies, and
//! index creation rolled back when a node refuses.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::ClusterBuilder;
use miroir_config::{Config, NodeConfig};
use miroir_http::{router, AppState};
use miroir_store_sqlite::{SqliteConfig, SqliteStore};
use serde_json::{json, Value};
use tower::ServiceExt as _;

async fn app(max_body_bytes: u64) -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("m.db"))).await.expect("store");
    let mut config = Config::default();
    config.server.max_body_bytes = max_body_bytes;
    config.nodes.push(NodeConfig {
        id: "n1".parse().expect("id"),
        // Nothing listens there: these tests must never reach a node.
        address: "http://127.0.0.1:9".into(),
        replica_group: Some("g".parse().expect("group")),
    });
    let state = AppState::new(config, Arc::new(store)).expect("state");
    (router(state), dir)
}

#[tokio::test]
async fn request_ids_are_generated_or_propagated() {
    let (app, _dir) = app(1000).await;
    let response = app
        .clone()
        .oneshot(Request::get("/health").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let generated = response.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(generated.len(), 36, "a uuid: {generated}");
    let response = app
        .oneshot(
            Request::get("/health")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn streamed_bodies_over_the_limit_get_413_before_any_node_work() {
    let (app, _dir) = app(1000).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 100])).collect();
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let request = Request::post("/indexes/products/documents")
        .header("content-type", "application/json")
        .body(body)
        .expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), 413);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let json: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(json["code"], "miroir_payload_too_large");
    assert_eq!(json["type"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn index_creation_is_rolled_back_when_a_node_refuses() {
    let mut cluster = ClusterBuilder::new(1, 3, 1).start().await;
    cluster.stop_node(2);
    let answer = cluster.send_json("POST", "/indexes", &json!({"uid": "movies"})).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.body["code"], "miroir_no_quorum");
    // The nodes that created it delete it again, and Miroir does not know the index.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for index in 0..2 {
        loop {
            let (status, _) = cluster.node_get(index, "/indexes/movies").await;
            if status == 404 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node {index} still has the index");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert_eq!(cluster.get("/indexes/movies").await.status, 404);
}
