//! Facets ordered by count over shards: the values and counts one node gives, though each node
//! would cut its own values at `maxValuesPerFacet` before Miroir sums them. Compared with one
//! development node holding every document, over three nodes (scatter) and over one node (the
//! whole-index answer, copied without parsing).

mod common;

use std::collections::BTreeMap;

use common::{Cluster, ClusterBuilder};
use serde_json::{json, Value};

const INDEX: &str = "shoes";
const MAX_VALUES: usize = 4;

/// 600 shoes spread over 40 brands, about 15 each: which brands lead on each node
/// depends on where the documents landed.
fn shoes() -> Vec<Value> {
    (0..600u64)
        .map(|id| {
            let brand = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 40;
            json!({"id": id, "brand": format!("brand-{brand:02}"), "size": 36 + id % 10})
        })
        .collect()
}

async fn load(target: &Cluster) {
    target.send_and_wait("POST", "/indexes", &json!({"uid": INDEX, "primaryKey": "id"})).await;
    let settings = json!({
        "filterableAttributes": ["brand", "size"],
        "faceting": {"maxValuesPerFacet": MAX_VALUES, "sortFacetValuesBy": {"*": "count"}}
    });
    let task =
        target.send_and_wait("PATCH", &format!("/indexes/{INDEX}/settings"), &settings).await;
    assert_eq!(task["status"], "succeeded", "{task}");
    let task =
        target.send_and_wait("POST", &format!("/indexes/{INDEX}/documents"), &json!(shoes())).await;
    assert_eq!(task["status"], "succeeded", "{task}");
}

/// What summing each node's own first `MAX_VALUES` brands (by count) would answer: the merge
/// Miroir cannot use.
async fn summed_node_cuts(cluster: &Cluster) -> Vec<(String, u64)> {
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for node in 0..cluster.nodes.len() {
        let path = format!("/indexes/{INDEX}/documents?limit=1000&fields=brand");
        let (status, page) = cluster.node_get(node, &path).await;
        assert_eq!(status, 200, "{page}");
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for doc in page["results"].as_array().expect("results") {
            *counts.entry(doc["brand"].as_str().expect("brand").to_owned()).or_default() += 1;
        }
        let mut ranked: Vec<_> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (brand, count) in ranked.into_iter().take(MAX_VALUES) {
            *sums.entry(brand).or_default() += count;
        }
    }
    let mut merged: Vec<_> = sums.into_iter().collect();
    merged.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    merged.truncate(MAX_VALUES);
    merged
}

fn distribution(answer: &Value) -> Vec<(String, u64)> {
    answer["facetDistribution"]["brand"]
        .as_object()
        .expect("brand facet")
        .iter()
        .map(|(brand, count)| (brand.clone(), count.as_u64().expect("count")))
        .collect()
}

/// The searches and facet searches compared, with what they answer on one node.
async fn compare(one: &Cluster, through: &Cluster, layout: &str) {
    let searches = [
        json!({"q": "", "facets": ["brand", "size"], "limit": 0}),
        json!({"q": "", "facets": ["brand"], "filter": "size < 40", "limit": 3}),
    ];
    for search in &searches {
        let expected = one.send_json("POST", &format!("/indexes/{INDEX}/search"), search).await;
        let answer = through.send_json("POST", &format!("/indexes/{INDEX}/search"), search).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(distribution(&answer.body), distribution(&expected.body), "{layout}: {search}");
        assert_eq!(
            answer.body["facetDistribution"], expected.body["facetDistribution"],
            "{layout}: {search}"
        );
        assert_eq!(answer.body["hits"], expected.body["hits"], "{layout}: {search}");
    }
    for facet_search in [
        json!({"facetName": "brand"}),
        json!({"facetName": "brand", "facetQuery": "brand"}),
        json!({"facetName": "brand", "filter": "size >= 40"}),
    ] {
        let path = format!("/indexes/{INDEX}/facet-search");
        let expected = one.send_json("POST", &path, &facet_search).await;
        let answer = through.send_json("POST", &path, &facet_search).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(
            answer.body["facetHits"], expected.body["facetHits"],
            "{layout}: {facet_search}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn count_ordered_facets_over_shards_equal_one_node() {
    let one = ClusterBuilder::new(1, 1, 1).master_key("facets").shards(1).start().await;
    let cluster = ClusterBuilder::new(1, 3, 1).master_key("facets").shards(12).start().await;
    let single = ClusterBuilder::new(1, 1, 1).master_key("facets").shards(1).start().await;
    for target in [&one, &cluster, &single] {
        load(target).await;
    }
    // Summing each node's own cut would answer something else: the data tells them apart.
    let (_, on_one) =
        one.node_get(0, &format!("/indexes/{INDEX}/search?facets=brand&limit=0")).await;
    assert_ne!(
        summed_node_cuts(&cluster).await,
        distribution(&on_one),
        "the data must make per-node cuts wrong"
    );
    compare(&one, &cluster, "3 nodes, 12 shards").await;
    compare(&one, &single, "1 node, whole index").await;

    // The client reads its own value back, and the task shows what it sent.
    for target in [&cluster, &single] {
        let faceting = target.get(&format!("/indexes/{INDEX}/settings/faceting")).await;
        assert_eq!(
            faceting.body,
            json!({"maxValuesPerFacet": MAX_VALUES, "sortFacetValuesBy": {"*": "count"}})
        );
        let all = target.get(&format!("/indexes/{INDEX}/settings")).await;
        assert_eq!(all.body["faceting"], faceting.body);
    }
    let (_, node_faceting) =
        cluster.node_get(0, &format!("/indexes/{INDEX}/settings/faceting")).await;
    assert!(
        node_faceting["maxValuesPerFacet"].as_u64().expect("a number") > MAX_VALUES as u64,
        "the nodes hold more values than the client sees: {node_faceting}"
    );

    // Changing only the order keeps the client's value; a reset brings the default back.
    let path = format!("/indexes/{INDEX}/settings/faceting");
    let order = json!({"sortFacetValuesBy": {"brand": "alpha", "*": "count"}});
    for target in [&one, &cluster] {
        let task = target.send_and_wait("PATCH", &path, &order).await;
        assert_eq!(task["status"], "succeeded", "{task}");
    }
    let expected = one.get(&format!("/tasks?indexUids={INDEX}&types=settingsUpdate&limit=1")).await;
    let task = cluster.get(&format!("/tasks?indexUids={INDEX}&types=settingsUpdate&limit=1")).await;
    assert_eq!(task.body["results"][0]["details"], expected.body["results"][0]["details"]);
    assert_eq!(cluster.get(&path).await.body, one.get(&path).await.body);
    assert_eq!(cluster.get(&path).await.body["maxValuesPerFacet"], MAX_VALUES);
    compare(&one, &cluster, "3 nodes, brand alphabetical").await;

    for target in [&one, &cluster] {
        let answer = target.call("DELETE", &path, None, &[]).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
        target.wait_task(answer.body["taskUid"].as_u64().expect("taskUid")).await;
    }
    assert_eq!(cluster.get(&path).await.body, one.get(&path).await.body);
    assert_eq!(
        cluster.get(&path).await.body,
        json!({"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}})
    );
}
