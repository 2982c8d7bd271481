//! The merge against the reference it must equal: one development node holding every document.
//! The catalogue is split over several in-memory indexes by shard, every search of the
//! contract scenario runs on each part with the node request, and the merged answer is compared
//! with the whole index's answer.

use std::path::PathBuf;

use miroir_devnode::index::Index;
use miroir_devnode::search::{parse_search_body, search};
use miroir_devnode::settings::validate_patch;
use serde_json::{json, Map, Value};

use super::*;
use crate::shard_of;

fn shared_dir() -> PathBuf {
    std::env::var_os("MIROIR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn load(path: &str) -> Value {
    let full = shared_dir().join(path);
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{} is needed ({e}); set MIROIR_SHARED_DIR", full.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The whole catalogue with the products scenario's settings, and `parts` indexes holding
/// the documents of shards `s % parts` (shards of S = 64).
fn indexes(parts: u32) -> (Index, Vec<Index>, Vec<Value>) {
    let scenario = load("contract/scenarios/products.json");
    let steps = scenario.as_array().expect("a list of steps").clone();
    let settings = steps.iter().find(|s| s["name"] == "settings.update").expect("settings step");
    let patch = validate_patch(&settings["body"]).expect("valid settings");
    let docs = load("datasets/products-2k.json");
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let fresh = |uid: &str| {
        let mut index = Index::new(uid, Some("id".into()), now);
        index.settings.apply_patch(&patch).expect("settings apply");
        index
    };
    let mut whole = fresh("whole");
    let mut split: Vec<Index> = (0..parts).map(|p| fresh(&format!("part{p}"))).collect();
    for doc in docs.as_array().expect("documents") {
        let doc: Map<String, Value> = doc.as_object().expect("object").clone();
        let id = doc["id"].as_str().expect("string id").to_owned();
        let part = (shard_of(&id, 64).get() % parts) as usize;
        for index in [&mut whole, &mut split[part]] {
            index.note_fields(&doc);
            index.documents.insert(id.clone(), doc.clone());
        }
    }
    let searches = steps
        .iter()
        .filter(|s| s["method"] == "POST" && s["path"] == "/indexes/products/search")
        .filter(|s| s["compare"] != "status")
        // `frequency` drops the query words that are most frequent in the index, so each node
        // decides from its own documents: a known limit of sharding, documented for users.
        .filter(|s| s["body"]["matchingStrategy"] != "frequency")
        .map(|s| json!({"name": s["name"], "body": s["body"], "ignore": s["ignore"]}))
        .collect();
    (whole, split, searches)
}

fn settings_of(index: &Index) -> MergeSettings {
    MergeSettings {
        max_total_hits: index.settings.pagination.max_total_hits,
        max_values_per_facet: index.settings.faceting.max_values_per_facet,
        sort_facet_values_by: index
            .settings
            .faceting
            .sort_facet_values_by
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        primary_key: "id".into(),
        distinct_attribute: index.settings.distinct_attribute.clone(),
    }
}

/// Runs of hits that may swap: equal sort values, or equal scores.
fn runs(hits: &[Value], body: &Value) -> Vec<(String, Vec<String>)> {
    let sort: Vec<String> = body["sort"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(|r| r.split(':').next().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for hit in hits {
        let key = if sort.is_empty() || sort.iter().any(|s| s.starts_with("_geoPoint")) {
            hit.get("_rankingScore")
                .or_else(|| hit.get("_geoDistance"))
                .map(|v| v.to_string())
                .unwrap_or_default()
        } else {
            sort.iter().map(|f| hit[f.as_str()].to_string()).collect::<Vec<_>>().join("|")
        };
        let id = hit["id"].to_string();
        match out.last_mut() {
            Some((last, members)) if *last == key => members.push(id),
            _ => out.push((key, vec![id])),
        }
    }
    out
}

/// `ignore` lists the fields the scenario itself does not compare (for example the total of a
/// `frequency` search, which depends on word frequencies and so on what each node holds).
fn assert_same(name: &str, body: &Value, ignore: &Value, want: &Value, got: &Value) {
    let ignored = |key: &str| ignore.as_array().is_some_and(|i| i.iter().any(|k| k == key));
    for key in ["estimatedTotalHits", "totalHits", "totalPages", "facetDistribution", "facetStats"]
    {
        if ignored(key) {
            continue;
        }
        assert_eq!(got.get(key), want.get(key), "{name}: {key}");
    }
    let (wh, gh) = (want["hits"].as_array().unwrap(), got["hits"].as_array().unwrap());
    assert_eq!(gh.len(), wh.len(), "{name}: number of hits");
    let (rw, rg) = (runs(wh, body), runs(gh, body));
    assert_eq!(
        rw.iter().map(|(k, m)| (k, m.len())).collect::<Vec<_>>(),
        rg.iter().map(|(k, m)| (k, m.len())).collect::<Vec<_>>(),
        "{name}: ranking runs"
    );
    let last = rw.len().saturating_sub(1);
    let first_cut =
        body.get("offset").is_some_and(|o| o != 0) || body.get("page").is_some_and(|p| p != 1);
    for (i, ((_, mut mw), (_, mut mg))) in rw.into_iter().zip(rg).enumerate() {
        if (i == 0 && first_cut) || i == last {
            continue; // a run cut by the page boundary may hold other members
        }
        mw.sort();
        mg.sort();
        assert_eq!(mg, mw, "{name}: members of run {i}");
    }
    for hit in gh {
        assert!(hit.as_object().unwrap().keys().all(|k| !k.starts_with(RESERVED_PREFIX)));
        if body["showRankingScore"] != true {
            assert!(hit.get("_rankingScore").is_none(), "{name}: score shown unasked");
        }
    }
}

#[test]
fn merged_answers_equal_one_node_holding_everything() {
    for parts in [1, 3, 6] {
        let (whole, split, searches) = indexes(parts);
        let settings = settings_of(&whole);
        assert!(searches.len() >= 30, "the scenario has searches");
        for step in &searches {
            let (name, body) = (step["name"].as_str().unwrap(), &step["body"]);
            let query = parse_search_body(body).expect("valid search");
            let Ok(want) = search(&whole, &query) else {
                continue; // an error step: nodes answer the same error, passed through
            };
            let node_body = node_request(body, &["id"]);
            let node_query = parse_search_body(&node_body).expect("valid node search");
            let answers: Vec<Value> =
                split.iter().map(|i| search(i, &node_query).expect("part answers")).collect();
            let got = merge_search(body, &answers, &settings);
            assert_same(&format!("{name} over {parts}"), body, &step["ignore"], &want, &got);
            // The merge from the answers' bytes writes the same answer, byte for byte.
            let bodies: Vec<Vec<u8>> =
                answers.iter().map(|a| serde_json::to_vec(a).expect("json")).collect();
            let slices: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
            let raw = merge_search_raw(body, &slices, &settings).expect("search answers");
            let written = serde_json::to_vec(&got).expect("json");
            assert_eq!(
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&written),
                "{name} over {parts}: the merge from bytes"
            );
        }
    }
}

#[test]
fn sorted_hits_merge_by_sort_value_not_by_score() {
    let hit = |id: &str, price: f64| {
        json!({"id": id, "_rankingScore": 1.0,
               "_rankingScoreDetails": {"price:asc": {"order": 0, "value": price}}})
    };
    let a = json!({"hits": [hit("a", 1.0), hit("c", 30.0)], "estimatedTotalHits": 2, "processingTimeMs": 3});
    let b = json!({"hits": [hit("b", 2.0), hit("d", 40.0)], "estimatedTotalHits": 2, "processingTimeMs": 7});
    let client = json!({"q": "", "sort": ["price:asc"], "limit": 3});
    let settings = MergeSettings {
        max_total_hits: 1000,
        max_values_per_facet: 100,
        sort_facet_values_by: vec![("*".into(), "alpha".into())],
        primary_key: "id".into(),
        distinct_attribute: None,
    };
    let merged = merge_search(&client, &[a, b], &settings);
    let ids: Vec<&str> =
        merged["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(merged["estimatedTotalHits"], 4);
    assert_eq!(merged["processingTimeMs"], 7, "the slowest node's time");
    assert!(merged["hits"][0].get("_rankingScoreDetails").is_none(), "details only when asked");
}

#[test]
fn facet_counts_are_summed_and_cut_in_the_index_order() {
    let a = json!({"hits": [], "facetDistribution": {"brand": {"Acme": 3, "Zed": 1}},
                   "facetStats": {"price": {"min": 2.0, "max": 9.0}}});
    let b = json!({"hits": [], "facetDistribution": {"brand": {"Acme": 1, "Bolt": 5}},
                   "facetStats": {"price": {"min": 1.0, "max": 5.0}}});
    let mut settings = MergeSettings {
        max_total_hits: 1000,
        max_values_per_facet: 2,
        sort_facet_values_by: vec![("*".into(), "alpha".into())],
        primary_key: "id".into(),
        distinct_attribute: None,
    };
    let client = json!({"q": "", "facets": ["brand", "price"]});
    let merged = merge_search(&client, &[a.clone(), b.clone()], &settings);
    assert_eq!(merged["facetDistribution"], json!({"brand": {"Acme": 4, "Bolt": 5}}));
    assert_eq!(merged["facetStats"], json!({"price": {"min": 1.0, "max": 9.0}}));
    settings.sort_facet_values_by = vec![("brand".into(), "count".into())];
    let merged = merge_search(&client, &[a, b], &settings);
    let order: Vec<&String> =
        merged["facetDistribution"]["brand"].as_object().unwrap().keys().collect();
    assert_eq!(order, ["Bolt", "Acme"]);
}

#[test]
fn node_requests_fetch_the_whole_prefix_with_details() {
    let req = node_request(
        &json!({"q": "x", "offset": 10, "limit": 5, "attributesToRetrieve": ["title"]}),
        &["id"],
    );
    assert_eq!(req["offset"], 0);
    assert_eq!(req["limit"], 15);
    assert_eq!(req["showRankingScoreDetails"], true);
    assert_eq!(req["attributesToRetrieve"], json!(["title", "id"]));
    let paged = node_request(&json!({"q": "x", "page": 3, "hitsPerPage": 7}), &[]);
    assert_eq!((paged["page"].as_u64(), paged["hitsPerPage"].as_u64()), (Some(1), Some(21)));
}
