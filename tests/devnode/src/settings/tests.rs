//! Request-time normalization of settings payloads (what task details show).

use serde_json::{json, Value};

use super::{patch_for_route, validate_patch};

fn accepted(body: Value) -> Value {
    validate_patch(&body).expect("payload should be accepted")
}

#[test]
fn recorded_exchange_gives_the_recorded_details() {
    let details = accepted(json!({
        "faceting": {"maxValuesPerFacet": 50},
        "filterableAttributes": ["brand", "category", "color", "tags", "price", "rating", "year",
            "in_stock", "reviews", "discontinued_at", "_geo"],
        "pagination": {"maxTotalHits": 2000},
        "searchableAttributes": ["title", "brand", "category", "description"],
        "sortableAttributes": ["price", "rating", "reviews", "year", "_geo"],
        "stopWords": ["the", "a", "by"],
        "synonyms": {"phone": ["smartphone"], "smartphone": ["phone"], "tv": ["monitor"]},
        "typoTolerance": {"minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8}}
    }));
    let expected = json!({
        "faceting": {"maxValuesPerFacet": 50},
        "filterableAttributes": ["brand", "category", "color", "tags", "price", "rating", "year",
            "in_stock", "reviews", "discontinued_at", "_geo"],
        "pagination": {"maxTotalHits": 2000},
        "searchableAttributes": ["title", "brand", "category", "description"],
        "sortableAttributes": ["_geo", "price", "rating", "reviews", "year"],
        "stopWords": ["a", "by", "the"],
        "synonyms": {"phone": ["smartphone"], "smartphone": ["phone"], "tv": ["monitor"]},
        "typoTolerance": {"minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 8}}
    });
    assert_eq!(details, expected);
    // Same text, key order included.
    assert_eq!(details.to_string(), expected.to_string());
}

#[test]
fn details_keys_are_sorted_at_every_depth() {
    let details = accepted(json!({
        "typoTolerance": {"enabled": false, "disableOnWords": ["b", "a"]},
        "rankingRules": ["words"],
        "displayedAttributes": ["x"]
    }));
    assert_eq!(
        details.to_string(),
        r#"{"displayedAttributes":["x"],"rankingRules":["words"],"typoTolerance":{"disableOnWords":["a","b"],"enabled":false}}"#
    );
}

#[test]
fn sets_are_sorted_and_deduplicated() {
    let details = accepted(json!({
        "sortableAttributes": ["year", "price", "year"],
        "stopWords": ["the", "a", "the"],
        "dictionary": ["J. R. R.", "C#", "C#"],
        "separatorTokens": ["|", "&", "|"],
        "nonSeparatorTokens": ["@", "#", "@"],
        "typoTolerance": {"disableOnWords": ["z", "y", "z"], "disableOnAttributes": ["t", "s", "s"]}
    }));
    assert_eq!(details["sortableAttributes"], json!(["price", "year"]));
    assert_eq!(details["stopWords"], json!(["a", "the"]));
    assert_eq!(details["dictionary"], json!(["C#", "J. R. R."]));
    assert_eq!(details["separatorTokens"], json!(["&", "|"]));
    assert_eq!(details["nonSeparatorTokens"], json!(["#", "@"]));
    assert_eq!(details["typoTolerance"]["disableOnWords"], json!(["y", "z"]));
    assert_eq!(details["typoTolerance"]["disableOnAttributes"], json!(["s", "t"]));
}

#[test]
fn wildcard_lists_collapse_and_keep_order() {
    let details = accepted(json!({
        "displayedAttributes": ["*", "x"],
        "searchableAttributes": ["title", "body", "title", "author"]
    }));
    assert_eq!(details["displayedAttributes"], json!(["*"]));
    assert_eq!(details["searchableAttributes"], json!(["title", "body", "author"]));
    let details = accepted(json!({"searchableAttributes": ["x", "*"], "displayedAttributes": []}));
    assert_eq!(details["searchableAttributes"], json!(["*"]));
    assert_eq!(details["displayedAttributes"], json!([]));
}

#[test]
fn nulls_stay_null_in_details() {
    let details = accepted(json!({
        "rankingRules": null,
        "typoTolerance": {"enabled": null, "minWordSizeForTypos": {"oneTypo": null}},
        "faceting": {"sortFacetValuesBy": null},
        "pagination": {"maxTotalHits": null},
        "embedders": {"old": null},
        "searchCutoffMs": null
    }));
    assert_eq!(
        details,
        json!({
            "embedders": {"old": null},
            "faceting": {"sortFacetValuesBy": null},
            "pagination": {"maxTotalHits": null},
            "rankingRules": null,
            "searchCutoffMs": null,
            "typoTolerance": {"enabled": null, "minWordSizeForTypos": {"oneTypo": null}}
        })
    );
}

#[test]
fn filterable_attributes_keep_order_and_fill_feature_defaults() {
    let details = accepted(json!({"filterableAttributes": [
        "z", "a",
        {"attributePatterns": ["price"]},
        {"attributePatterns": ["genre*"], "features": {"facetSearch": true, "filter": {"comparison": true}}}
    ]}));
    assert_eq!(
        details["filterableAttributes"],
        json!([
            "z", "a",
            {"attributePatterns": ["price"],
             "features": {"facetSearch": false, "filter": {"comparison": false, "equality": true}}},
            {"attributePatterns": ["genre*"],
             "features": {"facetSearch": true, "filter": {"comparison": true, "equality": true}}}
        ])
    );
}

#[test]
fn other_fields_are_accepted_as_given() {
    let details = accepted(json!({
        "rankingRules": ["words", "attribute", "price:asc", "release_date:desc", "sort"],
        "distinctAttribute": "sku",
        "proximityPrecision": "byAttribute",
        "prefixSearch": "disabled",
        "facetSearch": false,
        "searchCutoffMs": 150,
        "localizedAttributes": [{"attributePatterns": ["*_ja"], "locales": ["jpn"]}],
        "synonyms": {"tv": ["television"], "a": ["b", "a"]}
    }));
    assert_eq!(
        details.to_string(),
        r#"{"distinctAttribute":"sku","facetSearch":false,"localizedAttributes":[{"attributePatterns":["*_ja"],"locales":["jpn"]}],"prefixSearch":"disabled","proximityPrecision":"byAttribute","rankingRules":["words","attribute","price:asc","release_date:desc","sort"],"searchCutoffMs":150,"synonyms":{"a":["b","a"],"tv":["television"]}}"#
    );
}

#[test]
fn embedders_are_normalized_in_details() {
    let details = accepted(json!({"embedders": {
        "manual": {"dimensions": 3, "source": "userProvided", "binaryQuantized": false},
        "gone": null,
        "partial": {"binaryQuantized": true}
    }}));
    assert_eq!(
        details.to_string(),
        r#"{"embedders":{"gone":null,"manual":{"binaryQuantized":false,"dimensions":3,"source":"userProvided"},"partial":{"binaryQuantized":true}}}"#
    );
}

#[test]
fn sub_route_bodies_become_normalized_patches() {
    assert_eq!(
        patch_for_route("sortable-attributes", &json!(["b", "a", "b"])).expect("valid"),
        json!({"sortableAttributes": ["a", "b"]})
    );
    assert_eq!(
        patch_for_route("displayed-attributes", &json!(["a", "*"])).expect("valid"),
        json!({"displayedAttributes": ["*"]})
    );
    assert_eq!(
        patch_for_route("search-cutoff-ms", &Value::Null).expect("null resets"),
        json!({"searchCutoffMs": null})
    );
    assert_eq!(
        patch_for_route("typo-tolerance", &json!({"minWordSizeForTypos": {"oneTypo": 4}}))
            .expect("valid"),
        json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 4}}})
    );
}
