//! Unit tests of the search API: parameters, placeholder search, errors, and the property Miroir
//! relies on to merge shards: a document's score does not depend on the other documents.

use serde_json::{json, Value};

use crate::index::{Document, Index};

use super::{parse_search_body, parse_search_params, search};

fn doc(v: Value) -> Document {
    v.as_object().cloned().unwrap_or_default()
}

fn index_with(docs: &[Value]) -> Index {
    let mut index = Index::new("products", Some("id".into()), time::OffsetDateTime::UNIX_EPOCH);
    let s = &mut index.settings;
    s.searchable_attributes = vec!["title".into(), "brand".into(), "description".into()];
    s.filterable_attributes = vec![json!("brand"), json!("tags"), json!("price")];
    s.sortable_attributes = ["price".to_string(), "_geo".to_string()].into_iter().collect();
    s.stop_words = ["the", "a"].iter().map(|w| w.to_string()).collect();
    for d in docs {
        let d = doc(d.clone());
        index.note_fields(&d);
        let id = d["id"].as_str().unwrap_or_default().to_string();
        index.documents.insert(id, d);
    }
    index
}

fn catalogue() -> Vec<Value> {
    vec![
        json!({"id": "1", "title": "Acme wireless headphones", "brand": "Acme", "description": "A black pair of wireless headphones.", "price": 99.5, "tags": ["audio", "sale"]}),
        json!({"id": "2", "title": "Globex speaker", "brand": "Globex", "description": "Loud wireless speaker with deep bass.", "price": 49, "tags": ["audio"]}),
        json!({"id": "3", "title": "Initech headphone stand", "brand": "initech", "description": "Holds headphones.", "price": 15, "tags": []}),
        json!({"id": "4", "title": "Wireles charger", "brand": "Acme", "description": "Charges phones", "price": 20.0}),
        json!({"id": "5", "title": "Gadget", "brand": "ACME", "description": "Nothing relevant here at all, really.", "tags": ["sale"]}),
    ]
}

fn run(index: &Index, body: Value) -> Value {
    let query = parse_search_body(&body).expect("valid body");
    search(index, &query).expect("search runs")
}

fn err_code(index: &Index, body: Value) -> (String, String) {
    let result = parse_search_body(&body).and_then(|q| search(index, &q));
    let err = result.expect_err("an error");
    (err.code, err.message)
}

fn hit_ids(answer: &Value) -> Vec<String> {
    answer["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_documents_score_is_the_same_whatever_else_is_in_the_index() {
    let all = catalogue();
    let full = index_with(&all);
    let body = json!({"q": "wireless headphones", "showRankingScore": true, "showRankingScoreDetails": true});
    let answer = run(&full, body.clone());
    let hits = answer["hits"].as_array().cloned().unwrap_or_default();
    assert!(hits.len() >= 3, "{answer}");
    for hit in &hits {
        let id = hit["id"].as_str().unwrap_or("");
        let alone: Vec<Value> = all.iter().filter(|d| d["id"] == id).cloned().collect();
        let single = run(&index_with(&alone), body.clone());
        let same = &single["hits"][0];
        assert_eq!(same["_rankingScore"], hit["_rankingScore"], "score of {id}");
        assert_eq!(same["_rankingScoreDetails"], hit["_rankingScoreDetails"], "details of {id}");
        // And with the documents in another order.
        let mut reversed = all.clone();
        reversed.reverse();
        let other = run(&index_with(&reversed), body.clone());
        let again = other["hits"].as_array().into_iter().flatten().find(|h| h["id"] == id).cloned();
        assert_eq!(again.map(|h| h["_rankingScore"].clone()), Some(hit["_rankingScore"].clone()));
    }
}

#[test]
fn keyword_hits_rank_by_words_then_typos() {
    let index = index_with(&catalogue());
    let answer = run(&index, json!({"q": "wireless headphones", "showRankingScore": true}));
    let ids = hit_ids(&answer);
    assert_eq!(ids.first().map(String::as_str), Some("1"), "{answer}");
    assert!(ids.contains(&"4".to_string()), "one typo still matches: {ids:?}");
    let scores: Vec<f64> = answer["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["_rankingScore"].as_f64())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
}

#[test]
fn threshold_drops_hits_and_their_count() {
    let index = index_with(&catalogue());
    let all = run(&index, json!({"q": "wireless headphones"}));
    let some = run(&index, json!({"q": "wireless headphones", "rankingScoreThreshold": 0.9}));
    assert!(some["estimatedTotalHits"].as_u64() < all["estimatedTotalHits"].as_u64());
    assert_eq!(some["estimatedTotalHits"].as_u64(), Some(hit_ids(&some).len() as u64));
}

#[test]
fn placeholder_search_keeps_insertion_order_and_pages() {
    let index = index_with(&catalogue());
    let answer = run(&index, json!({}));
    assert_eq!(hit_ids(&answer), vec!["1", "2", "3", "4", "5"]);
    assert_eq!(answer["limit"], 20);
    assert_eq!(answer["offset"], 0);
    assert_eq!(answer["estimatedTotalHits"], 5);
    assert_eq!(answer["query"], "");
    let page = run(&index, json!({"hitsPerPage": 2, "page": 2}));
    assert_eq!(hit_ids(&page), vec!["3", "4"]);
    assert_eq!((page["totalHits"].clone(), page["totalPages"].clone()), (json!(5), json!(3)));
    assert!(page.get("estimatedTotalHits").is_none() && page.get("limit").is_none());
}

#[test]
fn max_total_hits_bounds_reachable_hits_not_the_total() {
    let mut index = index_with(&catalogue());
    index.settings.pagination.max_total_hits = 3;
    let answer = run(&index, json!({"offset": 2, "limit": 10}));
    assert_eq!(hit_ids(&answer), vec!["3"]);
    assert_eq!(answer["estimatedTotalHits"], 5);
}

#[test]
fn sort_puts_missing_values_last_and_keeps_ties_in_order() {
    let index = index_with(&catalogue());
    let asc = run(&index, json!({"sort": ["price:asc"]}));
    assert_eq!(hit_ids(&asc), vec!["3", "4", "2", "1", "5"]);
    let desc = run(&index, json!({"sort": ["price:desc"]}));
    assert_eq!(hit_ids(&desc), vec!["1", "2", "4", "3", "5"]);
}

#[test]
fn facets_count_case_insensitively_and_give_numeric_stats() {
    let index = index_with(&catalogue());
    let answer = run(&index, json!({"facets": ["brand", "tags", "price"], "limit": 0}));
    assert_eq!(answer["facetDistribution"]["brand"], json!({"Acme": 3, "Globex": 1, "initech": 1}));
    assert_eq!(answer["facetDistribution"]["tags"], json!({"audio": 2, "sale": 2}));
    assert_eq!(answer["facetDistribution"]["price"], json!({"15": 1, "20": 1, "49": 1, "99.5": 1}));
    assert_eq!(answer["facetStats"], json!({"price": {"min": 15.0, "max": 99.5}}));
}

#[test]
fn errors_have_meilisearch_codes_and_messages() {
    let index = index_with(&catalogue());
    let (code, message) = err_code(&index, json!({"sort": ["title:asc"]}));
    assert_eq!(code, "invalid_search_sort");
    assert_eq!(message, "Index `products`: Attribute `title` is not sortable. Available sortable attributes are: `_geo, price`.");
    let (code, _) = err_code(&index, json!({"sort": ["price"]}));
    assert_eq!(code, "invalid_search_sort");
    let (code, message) = err_code(&index, json!({"facets": ["title"]}));
    assert_eq!(code, "invalid_search_facets");
    assert_eq!(message, "Invalid facet distribution: Attribute `title` is not filterable. Available filterable attributes patterns are: `brand, price, tags`.");
    let (code, message) = err_code(&index, json!({"facets": ["*"]}));
    assert_eq!(code, "invalid_search_facets");
    assert!(message.starts_with("Invalid facet distribution: Pattern `*` is not filterable."));
    let (code, _) = err_code(&index, json!({"filter": "title = x"}));
    assert_eq!(code, "invalid_search_filter");
    let (code, message) = err_code(&index, json!({"limit": "ten"}));
    assert_eq!(code, "invalid_search_limit");
    assert_eq!(message, "Invalid value type at `.limit`: expected a positive integer, but found a string: `\"ten\"`");
    let (code, message) = err_code(&index, json!({"nonsense": 1}));
    assert_eq!(code, "bad_request");
    assert!(message
        .starts_with("Unknown field `nonsense`: expected one of `q`, `offset`, `limit`, `page`,"));
    assert!(message
        .ends_with("`showRankingScore`, `showRankingScoreDetails`, `showPerformanceDetails`"));
    for (body, code) in [
        (json!({"offset": -1}), "invalid_search_offset"),
        (json!({"page": "1"}), "invalid_search_page"),
        (json!({"hitsPerPage": true}), "invalid_search_hits_per_page"),
        (json!({"q": 5}), "invalid_search_q"),
        (json!({"attributesToRetrieve": "title"}), "invalid_search_attributes_to_retrieve"),
        (json!({"rankingScoreThreshold": 1.5}), "invalid_search_ranking_score_threshold"),
        (json!({"matchingStrategy": "some"}), "invalid_search_matching_strategy"),
        (json!({"showRankingScore": "yes"}), "invalid_search_show_ranking_score"),
    ] {
        assert_eq!(err_code(&index, body.clone()).0, code, "{body}");
    }
}

#[test]
fn get_parameters_are_text_and_lists_are_comma_separated() {
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let q = parse_search_params(&pairs(&[
        ("q", "router"),
        ("limit", "8"),
        ("showRankingScore", "true"),
        ("attributesToRetrieve", "id,title"),
        ("sort", "_geoPoint(48.85, 2.35):asc,price:desc"),
    ]))
    .expect("valid parameters");
    assert_eq!(q.q.as_deref(), Some("router"));
    assert_eq!(q.limit, Some(8));
    assert!(q.show_ranking_score);
    assert_eq!(q.attributes_to_retrieve, Some(vec!["id".to_string(), "title".to_string()]));
    assert_eq!(
        q.sort,
        Some(vec!["_geoPoint(48.85, 2.35):asc".to_string(), "price:desc".to_string()])
    );
    let err = parse_search_params(&pairs(&[("limit", "ten")])).expect_err("not a number");
    assert_eq!(err.code, "invalid_search_limit");
    let err = parse_search_params(&pairs(&[("nonsense", "1")])).expect_err("unknown");
    assert_eq!(err.code, "bad_request");
}

#[test]
fn retrieve_highlight_and_matches_position() {
    let index = index_with(&catalogue());
    let answer = run(
        &index,
        json!({"q": "headphones", "attributesToRetrieve": ["id", "title"], "attributesToHighlight": ["title"], "showMatchesPosition": true}),
    );
    let hit = &answer["hits"][0];
    assert_eq!(hit["id"], "1");
    assert!(hit.get("brand").is_none());
    assert_eq!(hit["_formatted"]["title"], "Acme wireless <em>headphones</em>");
    assert_eq!(hit["_matchesPosition"]["title"], json!([{"start": 14, "length": 10}]));
}

#[test]
fn phrases_and_negative_words() {
    let index = index_with(&catalogue());
    let phrase = run(&index, json!({"q": "\"wireless speaker\""}));
    assert_eq!(hit_ids(&phrase), vec!["2"]);
    let negative = run(&index, json!({"q": "wireless -speaker"}));
    assert!(!hit_ids(&negative).contains(&"2".to_string()));
    assert!(hit_ids(&negative).contains(&"1".to_string()));
}
