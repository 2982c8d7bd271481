//! The first-party multi-search plugin, enabled by `multi_search.enabled`, against the in-memory
//! host.

mod common;

use std::sync::Arc;

use common::{json, plugins_dir, request};
use miroir_plugins::{InMemoryHost, PluginRuntime};
use serde_json::json;

/// What the in-memory host answers to every federated search.
static FEDERATED: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(|| {
    json!({
        "hits": [{ "id": "b1", "_federation":
            { "indexUid": "books", "queriesPosition": 1, "weightedRankingScore": 1.6 } }],
        "processingTimeMs": 1, "limit": 2, "offset": 0, "estimatedTotalHits": 2
    })
});

async fn runtime() -> PluginRuntime {
    runtime_and_host().await.0
}

async fn runtime_and_host() -> (PluginRuntime, Arc<InMemoryHost>) {
    common::component("multi_search.wasm");
    let mut config = miroir_config::Config::default();
    config.multi_search.enabled = true;
    config.multi_search.max_queries_per_batch = 3;
    config.plugins.dir = plugins_dir();
    let host = InMemoryHost::new()
        .with_index(
            "movies",
            json!({
                "hits": [
                    { "id": 1, "title": "Dune", "_rankingScore": 0.9 },
                    { "id": 2, "title": "Dune II", "_rankingScore": 0.5 }
                ],
                "estimatedTotalHits": 2, "limit": 20, "offset": 0, "processingTimeMs": 1
            }),
            Vec::new(),
        )
        .with_index(
            "books",
            json!({
                "hits": [{ "id": "b1", "title": "Dune (novel)", "_rankingScore": 0.8 }],
                "estimatedTotalHits": 1, "limit": 20, "offset": 0, "processingTimeMs": 1
            }),
            Vec::new(),
        )
        .with_federated(FEDERATED.clone());
    let host = Arc::new(host);
    let runtime = PluginRuntime::from_config(&config, host.clone()).await.expect("loads");
    (runtime, host)
}

async fn multi_search(
    runtime: &PluginRuntime,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = runtime
        .handle(request("POST", "/multi-search", body.to_string().as_bytes()))
        .await
        .expect("served");
    (response.status, json(&response.body))
}

#[tokio::test]
async fn queries_are_answered_in_order_with_their_index_uid() {
    let runtime = runtime().await;
    assert_eq!(runtime.route_owner("POST", "/multi-search"), Some("multi_search"));
    let (status, body) = multi_search(
        &runtime,
        json!({ "queries": [
            { "indexUid": "books", "q": "dune" },
            { "indexUid": "movies", "q": "dune" }
        ] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["indexUid"], "books");
    assert_eq!(results[0]["hits"][0]["id"], "b1");
    assert_eq!(results[1]["indexUid"], "movies");
    assert_eq!(results[1]["query"], "dune");
}

#[tokio::test]
async fn a_failing_query_fails_the_request_with_its_position() {
    let runtime = runtime().await;
    let (status, body) = multi_search(
        &runtime,
        json!({ "queries": [{ "indexUid": "movies" }, { "indexUid": "nope", "q": "x" }] }),
    )
    .await;
    assert_eq!(status, 400, "{body}"); // Meilisearch answers a query error inside multi-search with 400
    assert_eq!(body["code"], "index_not_found");
    assert_eq!(body["type"], "invalid_request");
    assert_eq!(body["message"], "Inside `.queries[1]`: Index `nope` not found.");

    let (status, body) = multi_search(&runtime, json!({ "queries": [{ "q": "x" }] })).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("missing_index_uid")));

    let (status, body) = multi_search(
        &runtime,
        json!({ "queries": [{ "indexUid": "movies", "federationOptions": { "weight": 2 } }] }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_multi_search_federation_options"))
    );

    let four = json!({ "queries": [
        { "indexUid": "movies" }, { "indexUid": "movies" }, { "indexUid": "movies" }, { "indexUid": "movies" }
    ] });
    let (status, body) = multi_search(&runtime, four).await;
    assert_eq!(status, 400, "max_queries_per_batch is 3: {body}");
}

#[tokio::test]
async fn federated_search_is_validated_then_merged_by_the_host() {
    let (runtime, host) = runtime_and_host().await;
    let queries = json!([
        { "indexUid": "movies", "q": "dune" },
        { "indexUid": "books", "q": "dune", "federationOptions": { "weight": 2.0 } }
    ]);
    let (status, body) =
        multi_search(&runtime, json!({ "federation": { "limit": 2 }, "queries": queries.clone() }))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, FEDERATED.clone(), "the host's merged answer, unchanged");
    assert_eq!(
        host.federated_requests(),
        vec![json!({ "federation": { "limit": 2, "offset": 0 }, "queries": queries })],
        "the host gets the client's queries and the paging with its defaults"
    );

    let (status, body) = multi_search(
        &runtime,
        json!({ "federation": {}, "queries": [{ "indexUid": "movies", "limit": 5 }] }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_multi_search_query_pagination"))
    );
    let (status, body) = multi_search(
        &runtime,
        json!({ "federation": {}, "queries": [
            { "indexUid": "movies", "federationOptions": { "weight": -1 } }
        ] }),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_multi_search_weight")));
    assert_eq!(host.federated_requests().len(), 1, "invalid requests never reach the host");
}
