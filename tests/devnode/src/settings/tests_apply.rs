//! Task-time application of settings patches, sub-routes and resets.

use serde_json::{json, Value};

use super::{
    field_for_route, patch_for_route, reset_all_patch, reset_patch_for_route, validate_patch,
    Settings, FIELDS, SUB_ROUTES,
};

const DEFAULTS: &str = r#"{"displayedAttributes":["*"],"searchableAttributes":["*"],"filterableAttributes":[],"sortableAttributes":[],"rankingRules":["words","typo","proximity","attributeRank","sort","wordPosition","exactness"],"stopWords":[],"nonSeparatorTokens":[],"separatorTokens":[],"dictionary":[],"synonyms":{},"distinctAttribute":null,"proximityPrecision":"byWord","typoTolerance":{"enabled":true,"minWordSizeForTypos":{"oneTypo":5,"twoTypos":9},"disableOnWords":[],"disableOnAttributes":[],"disableOnNumbers":false},"faceting":{"maxValuesPerFacet":100,"sortFacetValuesBy":{"*":"alpha"}},"pagination":{"maxTotalHits":1000},"embedders":{},"searchCutoffMs":null,"localizedAttributes":null,"facetSearch":true,"prefixSearch":"indexingTime"}"#;

/// A patch changing every field away from its default.
fn everything_changed() -> Value {
    json!({
        "displayedAttributes": ["title"],
        "searchableAttributes": ["title", "body"],
        "filterableAttributes": ["genre", {"attributePatterns": ["price"], "features": {"filter": {"comparison": true}}}],
        "sortableAttributes": ["price"],
        "rankingRules": ["sort", "words", "price:desc"],
        "stopWords": ["the"],
        "nonSeparatorTokens": ["@"],
        "separatorTokens": ["|"],
        "dictionary": ["C#"],
        "synonyms": {"tv": ["television"]},
        "distinctAttribute": "sku",
        "proximityPrecision": "byAttribute",
        "typoTolerance": {"enabled": false, "minWordSizeForTypos": {"oneTypo": 3, "twoTypos": 6},
            "disableOnWords": ["x"], "disableOnAttributes": ["y"], "disableOnNumbers": true},
        "faceting": {"maxValuesPerFacet": 7, "sortFacetValuesBy": {"genre": "count"}},
        "pagination": {"maxTotalHits": 5},
        "embedders": {"manual": {"source": "userProvided", "dimensions": 3}},
        "searchCutoffMs": 40,
        "localizedAttributes": [{"attributePatterns": ["*_ja"], "locales": ["jpn"]}],
        "facetSearch": false,
        "prefixSearch": "disabled"
    })
}

fn changed() -> Settings {
    let mut settings = Settings::default();
    settings.apply_patch(&everything_changed()).expect("valid patch");
    settings
}

#[test]
fn defaults_answer_what_meilisearch_answers() {
    assert_eq!(Settings::default().to_json().to_string(), DEFAULTS);
}

#[test]
fn recorded_exchange_is_applied_with_merges() {
    let mut settings = Settings::default();
    settings
        .apply_patch(&json!({
            "faceting": {"maxValuesPerFacet": 50},
            "pagination": {"maxTotalHits": 2000},
            "sortableAttributes": ["price", "rating", "_geo"],
            "stopWords": ["the", "a", "by"],
            "typoTolerance": {"minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8}}
        }))
        .expect("valid patch");
    let got = settings.to_json();
    assert_eq!(
        got["faceting"],
        json!({"maxValuesPerFacet": 50, "sortFacetValuesBy": {"*": "alpha"}})
    );
    assert_eq!(
        got["typoTolerance"],
        json!({"enabled": true, "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8},
               "disableOnWords": [], "disableOnAttributes": [], "disableOnNumbers": false})
    );
    assert_eq!(got["pagination"], json!({"maxTotalHits": 2000}));
    assert_eq!(got["sortableAttributes"], json!(["_geo", "price", "rating"]));
    assert_eq!(got["stopWords"], json!(["a", "by", "the"]));
    assert_eq!(got["rankingRules"], Settings::default().to_json()["rankingRules"]);
}

#[test]
fn every_field_is_applied() {
    let got = changed().to_json();
    assert_eq!(
        got.to_string(),
        r#"{"displayedAttributes":["title"],"searchableAttributes":["title","body"],"filterableAttributes":["genre",{"attributePatterns":["price"],"features":{"facetSearch":false,"filter":{"equality":true,"comparison":true}}}],"sortableAttributes":["price"],"rankingRules":["sort","words","price:desc"],"stopWords":["the"],"nonSeparatorTokens":["@"],"separatorTokens":["|"],"dictionary":["C#"],"synonyms":{"tv":["television"]},"distinctAttribute":"sku","proximityPrecision":"byAttribute","typoTolerance":{"enabled":false,"minWordSizeForTypos":{"oneTypo":3,"twoTypos":6},"disableOnWords":["x"],"disableOnAttributes":["y"],"disableOnNumbers":true},"faceting":{"maxValuesPerFacet":7,"sortFacetValuesBy":{"*":"alpha","genre":"count"}},"pagination":{"maxTotalHits":5},"embedders":{"manual":{"source":"userProvided","dimensions":3}},"searchCutoffMs":40,"localizedAttributes":[{"attributePatterns":["*_ja"],"locales":["jpn"]}],"facetSearch":false,"prefixSearch":"disabled"}"#
    );
}

#[test]
fn null_resets_each_field_and_leaves_the_others() {
    let defaults = Settings::default().to_json();
    for field in FIELDS {
        let mut settings = changed();
        let before = settings.to_json();
        settings.apply_patch(&json!({ *field: null })).expect("null is valid");
        let after = settings.to_json();
        for other in FIELDS {
            let expected = if other == field { &defaults[*other] } else { &before[*other] };
            assert_eq!(&after[*other], expected, "reset {field}, checking {other}");
        }
    }
}

#[test]
fn nested_nulls_reset_nested_fields() {
    let mut settings = changed();
    settings
        .apply_patch(&json!({
            "typoTolerance": {"enabled": null, "minWordSizeForTypos": {"twoTypos": null}, "disableOnWords": null},
            "faceting": {"sortFacetValuesBy": null},
            "pagination": {"maxTotalHits": null}
        }))
        .expect("valid patch");
    let got = settings.to_json();
    assert_eq!(
        got["typoTolerance"],
        json!({"enabled": true, "minWordSizeForTypos": {"oneTypo": 3, "twoTypos": 9},
               "disableOnWords": [], "disableOnAttributes": ["y"], "disableOnNumbers": true})
    );
    assert_eq!(
        got["faceting"],
        json!({"maxValuesPerFacet": 7, "sortFacetValuesBy": {"*": "alpha"}})
    );
    assert_eq!(got["pagination"], json!({"maxTotalHits": 1000}));
    settings.apply_patch(&json!({"typoTolerance": {"minWordSizeForTypos": null}})).expect("valid");
    assert_eq!(settings.typo_tolerance.min_word_size_for_typos.one_typo, 5);
    assert_eq!(settings.typo_tolerance.min_word_size_for_typos.two_typos, 9);
}

#[test]
fn typo_tolerance_merges_and_checks_the_merged_sizes() {
    let mut settings = Settings::default();
    settings
        .apply_patch(&json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 4}}}))
        .expect("valid");
    assert_eq!(
        settings.to_json()["typoTolerance"]["minWordSizeForTypos"],
        json!({"oneTypo": 4, "twoTypos": 9})
    );
    settings.apply_patch(&json!({"typoTolerance": {"disableOnNumbers": true}})).expect("valid");
    assert_eq!(settings.typo_tolerance.min_word_size_for_typos.one_typo, 4);
    assert!(settings.typo_tolerance.disable_on_numbers);
    // Valid alone, invalid once merged with twoTypos 9: the task fails and nothing changes.
    let before = settings.clone();
    let err = settings
        .apply_patch(
            &json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 10}}, "stopWords": ["a"]}),
        )
        .expect_err("oneTypo above twoTypos");
    assert_eq!(err.code, "invalid_settings_typo_tolerance");
    assert!(err.message.contains("found `oneTypo: 10` and twoTypos: 9`"), "{}", err.message);
    assert_eq!(settings, before);
}

#[test]
fn faceting_sorts_merge_per_key() {
    let mut settings = Settings::default();
    settings
        .apply_patch(&json!({"faceting": {"sortFacetValuesBy": {"genre": "count"}}}))
        .expect("valid");
    settings
        .apply_patch(&json!({"faceting": {"sortFacetValuesBy": {"*": "count"}}}))
        .expect("valid");
    settings.apply_patch(&json!({"faceting": {"maxValuesPerFacet": 3}})).expect("valid");
    assert_eq!(
        settings.to_json()["faceting"],
        json!({"maxValuesPerFacet": 3, "sortFacetValuesBy": {"*": "count", "genre": "count"}})
    );
}

#[test]
fn embedders_merge_remove_and_fail_at_task_time() {
    let mut settings = Settings::default();
    settings
        .apply_patch(&json!({"embedders": {"a": {"source": "userProvided", "dimensions": 2}, "b": {"source": "userProvided", "dimensions": 4}}}))
        .expect("valid");
    settings.apply_patch(&json!({"embedders": {"a": {"binaryQuantized": true}}})).expect("merge");
    assert_eq!(
        settings.field_json("embedders"),
        Some(json!({"a": {"source": "userProvided", "dimensions": 2, "binaryQuantized": true},
                    "b": {"source": "userProvided", "dimensions": 4}}))
    );
    settings.apply_patch(&json!({"embedders": {"b": null}})).expect("removal");
    assert_eq!(settings.embedders.keys().collect::<Vec<_>>(), ["a"]);

    let before = settings.clone();
    let err = settings
        .apply_patch(&json!({"embedders": {"a": {"dimensions": 3}}}))
        .expect_err("dims change");
    assert_eq!(err.code, "invalid_settings_embedders");
    assert_eq!(settings, before);
    let err = settings
        .apply_patch(&json!({"embedders": {"a": {"dimensions": null}}}))
        .expect_err("dims reset");
    assert_eq!(err.message, "`.embedders.a`: Missing field `dimensions` (note: this field is mandatory for source `userProvided`)");
    assert_eq!(settings, before);

    // A new source starts from scratch; an embedder created without a source is `openAi`.
    settings
        .apply_patch(
            &json!({"embedders": {"a": {"source": "openAi", "model": "text-embedding-3-small"}}}),
        )
        .expect("valid");
    settings.apply_patch(&json!({"embedders": {"c": {"apiKey": "k"}}})).expect("valid");
    assert_eq!(
        settings.field_json("embedders"),
        Some(json!({"a": {"source": "openAi", "model": "text-embedding-3-small"},
                    "c": {"source": "openAi", "apiKey": "k"}}))
    );
    settings.apply_patch(&json!({"embedders": null})).expect("reset");
    assert_eq!(settings.field_json("embedders"), Some(json!({})));
}

#[test]
fn absent_fields_are_unchanged_and_invalid_patches_change_nothing() {
    let mut settings = changed();
    let before = settings.to_json();
    settings.apply_patch(&json!({})).expect("empty patch");
    assert_eq!(settings.to_json(), before);
    let err = settings
        .apply_patch(&json!({"stopWords": ["a"], "rankingRules": ["nope"]}))
        .expect_err("invalid");
    assert_eq!(err.code, "invalid_settings_ranking_rules");
    assert_eq!(settings.to_json(), before);
}

#[test]
fn every_sub_route_round_trips() {
    assert_eq!(SUB_ROUTES.len(), FIELDS.len());
    let settings = changed();
    let all = settings.to_json();
    for (segment, field) in SUB_ROUTES {
        assert_eq!(field_for_route(segment), Some(*field));
        let camel: String = segment
            .split('-')
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { w[..1].to_uppercase() + &w[1..] })
            .collect();
        assert_eq!(camel, *field);
        let value = settings.field_json(field).expect("a settings field");
        assert_eq!(value, all[*field], "{field}");
        // Sending back what GET answered is accepted and changes nothing.
        let patch = patch_for_route(segment, &value).expect("GET output is a valid body");
        let mut copy = settings.clone();
        copy.apply_patch(&patch).expect("valid");
        assert_eq!(copy, settings, "{segment}");
        // DELETE resets only that field.
        let reset = reset_patch_for_route(segment).expect("a settings route");
        assert_eq!(reset, json!({ *field: null }));
        copy.apply_patch(&reset).expect("valid");
        assert_eq!(copy.field_json(field), Settings::default().field_json(field), "{segment}");
    }
    assert_eq!(field_for_route("settings"), None);
    assert_eq!(reset_patch_for_route("rankingRules"), None);
    assert_eq!(settings.field_json("unknown"), None);
}

#[test]
fn reset_all_restores_defaults() {
    let patch = reset_all_patch();
    let fields = patch.as_object().expect("an object");
    assert_eq!(fields.len(), FIELDS.len());
    assert!(fields.values().all(Value::is_null));
    assert_eq!(validate_patch(&patch).expect("valid"), patch);
    let mut settings = changed();
    assert_ne!(settings, Settings::default());
    settings.apply_patch(&patch).expect("valid");
    assert_eq!(settings, Settings::default());
    assert_eq!(settings.to_json().to_string(), DEFAULTS);
}
