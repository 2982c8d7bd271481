//! Unit tests of search features: typo settings, synonyms and n-grams, phrases, each ranking
//! rule's score, cropping and highlighting, geo distance, distinct, vector and hybrid search.

use serde_json::{json, Value};

use crate::index::{Document, Index};

use super::{parse_search_body, search};

fn doc(v: Value) -> Document {
    v.as_object().cloned().unwrap_or_default()
}

fn index_with(docs: &[Value], settings: impl FnOnce(&mut crate::settings::Settings)) -> Index {
    let mut index = Index::new("items", Some("id".into()), time::OffsetDateTime::UNIX_EPOCH);
    index.settings.searchable_attributes = vec!["title".into(), "description".into()];
    settings(&mut index.settings);
    for d in docs {
        let d = doc(d.clone());
        index.note_fields(&d);
        let id = d["id"].as_str().unwrap_or_default().to_string();
        index.documents.insert(id, d);
    }
    index
}

fn run(index: &Index, body: Value) -> Value {
    let query = parse_search_body(&body).expect("valid body");
    search(index, &query).expect("search runs")
}

fn ids(index: &Index, body: Value) -> Vec<String> {
    run(index, body)["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| h["id"].as_str().unwrap_or("").to_string())
        .collect()
}

fn texts() -> Vec<Value> {
    vec![
        json!({"id": "1", "title": "blue wireless mouse", "description": "A quiet mouse."}),
        json!({"id": "2", "title": "notebook stand", "description": "Holds a 2024 laptop."}),
        json!({"id": "3", "title": "ny travel guide", "description": "Maps of the city."}),
        json!({"id": "4", "title": "keyboard", "description": "A wireles keyboard with 2025 keys."}),
    ]
}

#[test]
fn typo_settings_decide_which_words_tolerate_typos() {
    let on = index_with(&texts(), |_| {});
    assert_eq!(ids(&on, json!({"q": "wirelss"})), vec!["1", "4"]);
    let off = index_with(&texts(), |s| s.typo_tolerance.enabled = false);
    assert!(ids(&off, json!({"q": "wirelss"})).is_empty());
    let long = index_with(&texts(), |s| s.typo_tolerance.min_word_size_for_typos.one_typo = 9);
    assert!(ids(&long, json!({"q": "wirelss"})).is_empty(), "7 letters allow no typo at 9");
    let word = index_with(&texts(), |s| {
        s.typo_tolerance.disable_on_words.insert("wirelss".into());
    });
    assert!(ids(&word, json!({"q": "wirelss"})).is_empty());
    let attr = index_with(&texts(), |s| {
        s.typo_tolerance.disable_on_attributes.insert("description".into());
    });
    // "wireles" is in document 4's description, where typos are off; document 1 keeps its
    // exact "wireless" in the title.
    assert_eq!(ids(&attr, json!({"q": "wireless"})), vec!["1"]);
    assert_eq!(ids(&on, json!({"q": "wireless"})), vec!["1", "4"]);
    let numbers = index_with(&texts(), |s| {
        s.typo_tolerance.min_word_size_for_typos.one_typo = 4;
        s.typo_tolerance.disable_on_numbers = true;
    });
    assert!(ids(&numbers, json!({"q": "2026 "})).is_empty());
    let numbers_on =
        index_with(&texts(), |s| s.typo_tolerance.min_word_size_for_typos.one_typo = 4);
    assert_eq!(ids(&numbers_on, json!({"q": "2026 "})), vec!["2", "4"], "2024 and 2025");
}

#[test]
fn synonyms_expand_one_way_and_across_words() {
    let index = index_with(&texts(), |s| {
        s.synonyms.insert("new york".into(), vec!["ny".into()]);
        s.synonyms.insert("laptop".into(), vec!["notebook stand".into()]);
    });
    assert_eq!(ids(&index, json!({"q": "new york"})), vec!["3"], "a multi-word key");
    assert_eq!(ids(&index, json!({"q": "laptop"})), vec!["2"]);
    assert!(ids(&index, json!({"q": "ny "})).contains(&"3".to_string()));
    assert!(!ids(&index, json!({"q": "notebook "})).is_empty(), "the word itself still matches");
    // Only the configured direction: `ny` has no synonym, so "new york" texts are not found.
    let other = index_with(&[json!({"id": "9", "title": "new york", "description": ""})], |s| {
        s.synonyms.insert("new york".into(), vec!["ny".into()]);
    });
    assert!(ids(&other, json!({"q": "ny "})).is_empty());
}

#[test]
fn adjacent_query_words_also_match_written_as_one() {
    let index = index_with(&texts(), |_| {});
    assert_eq!(ids(&index, json!({"q": "note book", "matchingStrategy": "all"})), vec!["2"]);
}

#[test]
fn phrases_need_their_words_in_order() {
    let index = index_with(&texts(), |_| {});
    assert_eq!(ids(&index, json!({"q": "\"wireless mouse\""})), vec!["1"]);
    assert!(ids(&index, json!({"q": "\"mouse wireless\""})).is_empty());
    assert!(ids(&index, json!({"q": "\"wirelss mouse\""})).is_empty(), "no typos in a phrase");
}

#[test]
fn each_ranking_rule_scores_like_meilisearch() {
    let index = index_with(&texts(), |_| {});
    let answer = run(
        &index,
        json!({"q": "wireless mouse", "showRankingScore": true, "showRankingScoreDetails": true}),
    );
    let hit = &answer["hits"][0];
    assert_eq!(hit["id"], "1");
    let d = &hit["_rankingScoreDetails"];
    assert_eq!(
        d["words"],
        json!({"order": 0, "matchingWords": 2, "maxMatchingWords": 2, "score": 1.0})
    );
    assert_eq!(d["typo"], json!({"order": 1, "typoCount": 0, "maxTypoCount": 2, "score": 1.0}));
    assert_eq!(d["proximity"], json!({"order": 2, "score": 1.0}));
    assert_eq!(d["attributeRank"], json!({"order": 3, "score": 1.0}));
    // "wireless" at 1 for term 0 and "mouse" at 2 for term 1 cost 1 each: 19/21.
    assert_eq!(d["wordPosition"], json!({"order": 4, "score": 19.0 / 21.0}));
    assert_eq!(
        d["exactness"],
        json!({"order": 5, "matchType": "noExactMatch", "matchingWords": 2, "maxMatchingWords": 2, "score": 3.0 / 9.0})
    );
    // The global score folds the ranks: ((((1·3+2)·4+3)·3+2)·21+18)·9+2 over 2·3·4·3·21·9.
    let fold = |pairs: &[(u64, u64)]| {
        let (mut r, mut m) = (1u64, 1u64);
        for &(rank, max) in pairs {
            r = (r - 1) * max + rank;
            m *= max;
        }
        r as f64 / m as f64
    };
    let want = fold(&[(2, 2), (3, 3), (4, 4), (3, 3), (19, 21), (3, 9)]);
    assert_eq!(hit["_rankingScore"], json!(want));

    // A typo, a gap and a lower attribute each lower their rule's score.
    let typo = run(&index, json!({"q": "wirelss keyboard", "showRankingScoreDetails": true}));
    let d = &typo["hits"][0]["_rankingScoreDetails"];
    assert_eq!(typo["hits"][0]["id"], "4");
    assert_eq!(d["typo"]["typoCount"], 1);
    assert_eq!(d["attributeRank"]["score"], json!(2.0 / 3.0), "one of two words in description");
    let gap = run(&index, json!({"q": "blue mouse", "showRankingScoreDetails": true}));
    assert_eq!(gap["hits"][0]["_rankingScoreDetails"]["proximity"]["score"], json!(0.75));
    let exact = run(&index, json!({"q": "keyboard", "showRankingScoreDetails": true}));
    assert_eq!(exact["hits"][0]["_rankingScoreDetails"]["exactness"]["matchType"], "exactMatch");
}

#[test]
fn cropping_and_highlighting_mark_the_matches() {
    let long = "one two three four five six seven eight nine ten eleven twelve bluetooth speaker thirteen fourteen fifteen";
    let index = index_with(&[json!({"id": "1", "title": "speaker", "description": long})], |_| {});
    let answer = run(
        &index,
        json!({"q": "bluetooth speaker", "attributesToCrop": ["description"], "cropLength": 4, "attributesToHighlight": ["title"], "cropMarker": "[…]", "highlightPreTag": "<b>", "highlightPostTag": "</b>"}),
    );
    let formatted = &answer["hits"][0]["_formatted"];
    assert_eq!(formatted["title"], "<b>speaker</b>");
    assert_eq!(formatted["description"], "[…]twelve bluetooth speaker thirteen[…]");
    let highlighted = run(
        &index,
        json!({"q": "bluetooth", "attributesToCrop": ["description:3"], "attributesToHighlight": ["*"]}),
    );
    assert_eq!(
        highlighted["hits"][0]["_formatted"]["description"],
        "…twelve <em>bluetooth</em> speaker…"
    );
}

#[test]
fn geo_sort_reports_the_haversine_distance() {
    let paris = json!({"id": "paris", "title": "paris", "description": "", "_geo": {"lat": 48.8566, "lng": 2.3522}});
    let london = json!({"id": "london", "title": "london", "description": "", "_geo": {"lat": 51.5074, "lng": -0.1278}});
    let index = index_with(&[london, paris], |s| {
        s.sortable_attributes.insert("_geo".into());
    });
    let answer = run(&index, json!({"sort": ["_geoPoint(48.8566, 2.3522):asc"]}));
    assert_eq!(answer["hits"][0]["id"], "paris");
    assert_eq!(answer["hits"][0]["_geoDistance"], 0);
    let km = answer["hits"][1]["_geoDistance"].as_i64().unwrap_or_default() / 1000;
    assert_eq!(km, 343, "Paris to London");
}

#[test]
fn distinct_keeps_the_best_hit_of_each_value() {
    let docs = [
        json!({"id": "1", "title": "red shirt", "description": "", "model": "A"}),
        json!({"id": "2", "title": "red shirt large", "description": "", "model": "A"}),
        json!({"id": "3", "title": "red shirt", "description": "", "model": "B"}),
    ];
    let index = index_with(&docs, |s| s.filterable_attributes = vec![json!("model")]);
    assert_eq!(ids(&index, json!({"q": "red shirt", "distinct": "model"})), vec!["1", "3"]);
    assert_eq!(run(&index, json!({"q": "red", "distinct": "model"}))["estimatedTotalHits"], 2);
}

fn vector_index() -> Index {
    let docs = [
        json!({"id": "a", "title": "alpha", "description": "", "_vectors": {"e": [1.0, 0.0]}}),
        json!({"id": "b", "title": "beta", "description": "", "_vectors": {"e": [0.0, 1.0]}}),
        json!({"id": "c", "title": "alpha beta", "description": "", "_vectors": {"e": [-1.0, 0.0]}}),
    ];
    index_with(&docs, |s| {
        s.embedders.insert("e".into(), json!({"source": "userProvided", "dimensions": 2}));
    })
}

#[test]
fn vector_search_ranks_by_similarity_and_counts_semantic_hits() {
    let index = vector_index();
    let answer = run(
        &index,
        json!({"vector": [1.0, 0.0], "hybrid": {"embedder": "e", "semanticRatio": 1.0}, "showRankingScore": true}),
    );
    let scores: Vec<(String, f64)> = answer["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["id"].as_str().unwrap_or("").to_string(),
                h["_rankingScore"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(scores, vec![("a".into(), 1.0), ("b".into(), 0.5), ("c".into(), 0.0)]);
    assert_eq!(answer["semanticHitCount"], 3);
    assert!(answer["hits"][0].get("_vectors").is_none(), "vectors only with retrieveVectors");
}

#[test]
fn hybrid_search_merges_by_weighted_scores() {
    let index = vector_index();
    let body = |ratio: f64| json!({"q": "beta", "vector": [1.0, 0.0], "hybrid": {"embedder": "e", "semanticRatio": ratio}, "showRankingScore": true});
    // Keyword hits b and c score 1.0 and ~0.94; the semantic side gives a 1.0, b 0.5, c 0.
    // At 0.9 the semantic side weighs more: a (0.9) first, then the keyword hits (0.1 each
    // weighed against b's 0.45 and c's 0.0).
    let mixed = run(&index, body(0.9));
    let got: Vec<&str> =
        mixed["hits"].as_array().into_iter().flatten().filter_map(|h| h["id"].as_str()).collect();
    assert_eq!(got, vec!["a", "b", "c"]);
    assert_eq!(mixed["semanticHitCount"], 2, "a and b come from the semantic side");
    assert_eq!(mixed["hits"][0]["_rankingScore"], 1.0, "scores are shown unweighted");
    // At 0.1 the keyword hits come first, and a full page of good keyword hits skips the
    // semantic search altogether.
    let keyword = run(
        &index,
        json!({"q": "beta", "limit": 1, "vector": [1.0, 0.0], "hybrid": {"embedder": "e", "semanticRatio": 0.1}}),
    );
    assert_eq!(keyword["semanticHitCount"], 0);
    assert_eq!(keyword["estimatedTotalHits"], 2);
}
