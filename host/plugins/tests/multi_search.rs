//! The first-party multi-search plugin, enabled by `multi_search.enabled`, against the in-memory
//! host.

mod common;

use std::sync::Arc;

use common::{json, plugins_dir, request};
use miroir_plugins::{InMemoryHost, PluginRuntime};
use serde_json::json;

async fn runtime() -> PluginRuntime {
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
        );
    PluginRuntime::from_config(&config, Arc::new(host)).await.expect("multi-search loads")
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
async fn federated_search_merges_by_weighted_score() {
    let runtime = runtime().await;
    let (status, body) = multi_search(
        &runtime,
        json!({
            "federation": { "limit": 2, "offset": 0 },
            "queries": [
                { "indexUid": "movies", "q": "dune" },
                { "indexUid": "books", "q": "dune", "federationOptions": { "weight": 2.0 } }
            ]
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["limit"], 2);
    assert_eq!(body["offset"], 0);
    assert_eq!(body["estimatedTotalHits"], 3);
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0]["id"], "b1", "0.8 x 2 beats 0.9");
    assert_eq!(
        hits[0]["_federation"],
        json!({ "indexUid": "books", "queriesPosition": 1, "weightedRankingScore": 1.6 })
    );
    assert_eq!(hits[1]["id"], 1);
    assert!(hits[1].get("_rankingScore").is_none(), "scores only when asked");

    let (status, body) = multi_search(
        &runtime,
        json!({ "federation": {}, "queries": [{ "indexUid": "movies", "limit": 5 }] }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_multi_search_query_pagination"))
    );

    let (_, body) = multi_search(
        &runtime,
        json!({ "federation": { "offset": 1, "limit": 5 }, "queries": [{ "indexUid": "movies" }] }),
    )
    .await;
    assert_eq!(body["hits"].as_array().unwrap().len(), 1, "offset skips the best hit: {body}");
    assert_eq!(body["hits"][0]["id"], 2);
}
