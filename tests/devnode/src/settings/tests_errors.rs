//! Request-time validation errors of settings payloads: codes and messages.

use serde_json::{json, Value};

use super::{patch_for_route, validate_patch};

const RANKING_RULE_HELP: &str = "ranking rule is invalid. Valid ranking rules are words, typo, \
     sort, proximity, attribute, attributeRank, wordPosition, exactness and custom ranking rules.";
const ALL_FIELDS: &str = "`displayedAttributes`, `searchableAttributes`, `filterableAttributes`, \
     `sortableAttributes`, `rankingRules`, `stopWords`, `nonSeparatorTokens`, `separatorTokens`, \
     `dictionary`, `synonyms`, `distinctAttribute`, `proximityPrecision`, `typoTolerance`, \
     `faceting`, `pagination`, `embedders`, `searchCutoffMs`, `localizedAttributes`, \
     `facetSearch`, `prefixSearch`";

/// The (code, message) of a rejected payload.
fn rejected(body: Value) -> (String, String) {
    let err = validate_patch(&body).expect_err("payload should be rejected");
    assert_eq!(err.status.as_u16(), 400, "{err}");
    assert_eq!(err.error_type, "invalid_request");
    (err.code, err.message)
}

fn accepted(body: Value) -> Value {
    validate_patch(&body).expect("payload should be accepted")
}

#[test]
fn unknown_field_is_a_bad_request() {
    let (code, message) = rejected(json!({"foo": 1}));
    assert_eq!(code, "bad_request");
    assert_eq!(message, format!("Unknown field `foo`: expected one of {ALL_FIELDS}"));
    let (_, message) = rejected(json!({"displayedAttribute": ["x"]}));
    assert_eq!(
        message,
        format!(
            "Unknown field `displayedAttribute`: did you mean `displayedAttributes`? expected one \
             of {ALL_FIELDS}"
        )
    );
}

#[test]
fn whole_body_of_the_wrong_type_is_a_bad_request() {
    let (code, message) = rejected(json!(["rankingRules"]));
    assert_eq!(code, "bad_request");
    assert_eq!(
        message,
        "Invalid value type: expected an object, but found an array: `[\"rankingRules\"]`"
    );
    let (code, message) = rejected(Value::Null);
    assert_eq!(code, "bad_request");
    assert_eq!(message, "Invalid value type: expected an object, but found null");
}

#[test]
fn wrong_type_names_the_field_in_the_code() {
    let cases = [
        ("displayedAttributes", json!("x"), "expected an array, but found a string: `\"x\"`"),
        ("searchableAttributes", json!(1), "expected an array, but found a positive integer: `1`"),
        ("filterableAttributes", json!({}), "expected an array, but found an object: `{}`"),
        ("sortableAttributes", json!(true), "expected an array, but found a boolean: `true`"),
        ("rankingRules", json!("x"), "expected an array, but found a string: `\"x\"`"),
        ("stopWords", json!(1.5), "expected an array, but found a float: `1.5`"),
        ("nonSeparatorTokens", json!("a"), "expected an array, but found a string: `\"a\"`"),
        ("separatorTokens", json!(-1), "expected an array, but found a negative integer: `-1`"),
        ("dictionary", json!({"a": 1}), "expected an array, but found an object: `{\"a\":1}`"),
        ("synonyms", json!(["a"]), "expected an object, but found an array: `[\"a\"]`"),
        ("distinctAttribute", json!(["a"]), "expected a string, but found an array: `[\"a\"]`"),
        ("proximityPrecision", json!(1), "expected a string, but found a positive integer: `1`"),
        ("typoTolerance", json!(true), "expected an object, but found a boolean: `true`"),
        ("faceting", json!([]), "expected an object, but found an array: `[]`"),
        ("pagination", json!(10), "expected an object, but found a positive integer: `10`"),
        ("embedders", json!("e"), "expected an object, but found a string: `\"e\"`"),
        (
            "searchCutoffMs",
            json!(-5),
            "expected a positive integer, but found a negative integer: `-5`",
        ),
        ("localizedAttributes", json!({}), "expected an array, but found an object: `{}`"),
        ("facetSearch", json!("yes"), "expected a boolean, but found a string: `\"yes\"`"),
        ("prefixSearch", json!(false), "expected a string, but found a boolean: `false`"),
    ];
    for (field, value, tail) in cases {
        let (code, message) = rejected(json!({ field: value }));
        let snake: String = field
            .chars()
            .flat_map(|c| {
                if c.is_ascii_uppercase() {
                    vec!['_', c.to_ascii_lowercase()]
                } else {
                    vec![c]
                }
            })
            .collect();
        assert_eq!(code, format!("invalid_settings_{snake}"), "{field}");
        assert_eq!(message, format!("Invalid value type at `.{field}`: {tail}"), "{field}");
    }
}

#[test]
fn item_errors_point_at_the_item() {
    let (code, message) = rejected(json!({"stopWords": ["a", 2]}));
    assert_eq!(code, "invalid_settings_stop_words");
    assert_eq!(message, "Invalid value type at `.stopWords[1]`: expected a string, but found a positive integer: `2`");
    let (code, message) = rejected(json!({"synonyms": {"tv": "television"}}));
    assert_eq!(code, "invalid_settings_synonyms");
    assert_eq!(message, "Invalid value type at `.synonyms.tv`: expected an array, but found a string: `\"television\"`");
    let (code, message) = rejected(json!({"filterableAttributes": ["a", 3]}));
    assert_eq!(code, "invalid_settings_filterable_attributes");
    assert_eq!(message, "Invalid value type at `.filterableAttributes[1]`: expected a string or an object, but found a positive integer: `3`");
}

#[test]
fn unknown_ranking_rule_is_rejected() {
    let (code, message) = rejected(json!({"rankingRules": ["words", "foo"]}));
    assert_eq!(code, "invalid_settings_ranking_rules");
    assert_eq!(message, format!("Invalid value at `.rankingRules[1]`: `foo` {RANKING_RULE_HELP}"));
    for bad in ["price:up", ":asc", "typos", "asc(price)"] {
        let (code, message) = rejected(json!({"rankingRules": [bad]}));
        assert_eq!(code, "invalid_settings_ranking_rules");
        assert_eq!(
            message,
            format!("Invalid value at `.rankingRules[0]`: `{bad}` {RANKING_RULE_HELP}")
        );
    }
}

#[test]
fn typo_tolerance_errors() {
    let (code, message) =
        rejected(json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 9, "twoTypos": 5}}}));
    assert_eq!(code, "invalid_settings_typo_tolerance");
    assert_eq!(
        message,
        "`minWordSizeForTypos` setting is invalid. `oneTypo` and `twoTypos` fields should be \
         between `0` and `255`, and `twoTypos` should be greater or equals to `oneTypo` but found \
         `oneTypo: 9` and twoTypos: 5`."
    );
    let (code, message) = rejected(json!({"typoTolerance": {"enable": false}}));
    assert_eq!(code, "invalid_settings_typo_tolerance");
    assert_eq!(
        message,
        "Unknown field `enable` inside `.typoTolerance`: did you mean `enabled`? expected one of \
         `enabled`, `minWordSizeForTypos`, `disableOnWords`, `disableOnAttributes`, `disableOnNumbers`"
    );
    let (_, message) =
        rejected(json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 1000}}}));
    assert_eq!(
        message,
        "Invalid value at `.typoTolerance.minWordSizeForTypos.oneTypo`: value: `1000` is too large \
         to be deserialized, maximum value authorized is `255`"
    );
    let (_, message) = rejected(json!({"typoTolerance": {"minWordSizeForTypos": {"twoTypo": 3}}}));
    assert_eq!(
        message,
        "Unknown field `twoTypo` inside `.typoTolerance.minWordSizeForTypos`: did you mean \
         `twoTypos`? expected one of `oneTypo`, `twoTypos`"
    );
    let (_, message) = rejected(json!({"typoTolerance": {"enabled": "no"}}));
    assert_eq!(message, "Invalid value type at `.typoTolerance.enabled`: expected a boolean, but found a string: `\"no\"`");
}

#[test]
fn pagination_errors() {
    let (code, message) = rejected(json!({"pagination": {"maxTotalHits": 0}}));
    assert_eq!(code, "invalid_settings_pagination");
    assert_eq!(
        message,
        format!(
            "Invalid value at `.pagination.maxTotalHits`: a non-zero integer value lower than `{}` \
             was expected, but found a zero",
            usize::MAX
        )
    );
    let (code, message) = rejected(json!({"pagination": {"maxTotalHits": 10.5}}));
    assert_eq!(code, "invalid_settings_pagination");
    assert_eq!(message, "Invalid value type at `.pagination.maxTotalHits`: expected a positive integer, but found a float: `10.5`");
    let (code, _) = rejected(json!({"pagination": {"limit": 10}}));
    assert_eq!(code, "invalid_settings_pagination");
}

#[test]
fn faceting_errors() {
    let (code, message) = rejected(json!({"faceting": {"sortFacetValuesBy": {"*": "random"}}}));
    assert_eq!(code, "invalid_settings_faceting");
    assert_eq!(message, "Unknown value `random` at `.faceting.sortFacetValuesBy.*`: expected one of `alpha`, `count`");
    let (_, message) = rejected(json!({"faceting": {"sortFacetValuesBy": {"genre": "alph"}}}));
    assert_eq!(message, "Unknown value `alph` at `.faceting.sortFacetValuesBy.genre`: did you mean `alpha`? expected one of `alpha`, `count`");
    let (code, message) = rejected(json!({"faceting": {"maxValuesPerFacet": "10"}}));
    assert_eq!(code, "invalid_settings_faceting");
    assert_eq!(message, "Invalid value type at `.faceting.maxValuesPerFacet`: expected a positive integer, but found a string: `\"10\"`");
    assert_eq!(
        accepted(
            json!({"faceting": {"maxValuesPerFacet": 0, "sortFacetValuesBy": {"b": "count", "a": "alpha"}}})
        ),
        json!({"faceting": {"maxValuesPerFacet": 0, "sortFacetValuesBy": {"a": "alpha", "b": "count"}}})
    );
}

#[test]
fn enum_settings_reject_unknown_values() {
    let (code, message) = rejected(json!({"proximityPrecision": "byWords"}));
    assert_eq!(code, "invalid_settings_proximity_precision");
    assert_eq!(message, "Unknown value `byWords` at `.proximityPrecision`: did you mean `byWord`? expected one of `byWord`, `byAttribute`");
    let (code, message) = rejected(json!({"prefixSearch": "always"}));
    assert_eq!(code, "invalid_settings_prefix_search");
    assert_eq!(
        message,
        "Unknown value `always` at `.prefixSearch`: expected one of `indexingTime`, `disabled`"
    );
}

#[test]
fn localized_and_filterable_object_errors() {
    let (code, message) = rejected(json!({"localizedAttributes": [{"attributePatterns": ["a"]}]}));
    assert_eq!(code, "invalid_settings_localized_attributes");
    assert_eq!(message, "Missing field `locales` inside `.localizedAttributes[0]`");
    let (code, message) = rejected(
        json!({"filterableAttributes": [{"attributePatterns": ["a"], "features": {"sort": true}}]}),
    );
    assert_eq!(code, "invalid_settings_filterable_attributes");
    assert_eq!(message, "Unknown field `sort` inside `.filterableAttributes[0].features`: expected one of `facetSearch`, `filter`");
    let (_, message) = rejected(json!({"filterableAttributes": [{"features": {}}]}));
    assert_eq!(message, "Missing field `attributePatterns` inside `.filterableAttributes[0]`");
}

#[test]
fn embedder_errors() {
    let embedders = |e: Value| rejected(json!({"embedders": e}));
    let (code, message) = embedders(json!({"default": "userProvided"}));
    assert_eq!(code, "invalid_settings_embedders");
    assert_eq!(message, "Invalid value type at `.embedders.default`: expected an object, but found a string: `\"userProvided\"`");
    let (_, message) = embedders(json!({"default": {"source": "openAI"}}));
    assert_eq!(message, "Unknown value `openAI` at `.embedders.default.source`: did you mean `openAi`? expected one of `openAi`, `huggingFace`, `ollama`, `userProvided`, `rest`, `composite`");
    let (code, message) = embedders(json!({"default": {"source": "userProvided"}}));
    assert_eq!(code, "invalid_settings_embedders");
    assert_eq!(message, "`.embedders.default`: Missing field `dimensions` (note: this field is mandatory for source `userProvided`)");
    let (_, message) = embedders(json!({"default": {"source": "userProvided", "dimensions": 0}}));
    assert_eq!(message, "`.embedders.default.dimensions`: `dimensions` cannot be zero");
    let (_, message) = embedders(json!({"default": {"source": "userProvided", "dimensions": "3"}}));
    assert_eq!(message, "Invalid value type at `.embedders.default.dimensions`: expected a positive integer, but found a string: `\"3\"`");
    let (_, message) = embedders(
        json!({"default": {"source": "userProvided", "dimensions": 3, "documentTemplate": "{{doc.title}}"}}),
    );
    assert_eq!(message, "`.embedders.default`: Field `documentTemplate` unavailable for source `userProvided` (only available for sources: `huggingFace`, `openAi`, `ollama`, `rest`). Available fields: `source`, `dimensions`, `distribution`, `binaryQuantized`");
    let (code, message) = embedders(json!({"default": {"source": "userProvided", "dims": 3}}));
    assert_eq!(code, "invalid_settings_embedders");
    assert!(
        message.starts_with(
            "Unknown field `dims` inside `.embedders.default`: expected one of `source`, `model`, "
        ),
        "{message}"
    );
}

#[test]
fn first_error_in_key_order_wins() {
    let (code, _) = rejected(json!({"rankingRules": "x", "faceting": "y"}));
    assert_eq!(code, "invalid_settings_faceting");
    let (code, _) = rejected(json!({"zzz": 1, "facetSearch": "y"}));
    assert_eq!(code, "invalid_settings_facet_search");
    let (code, _) = rejected(json!({"aaa": 1, "facetSearch": "y"}));
    assert_eq!(code, "bad_request");
}

#[test]
fn sub_route_bodies_are_read_at_the_root() {
    let err = patch_for_route("ranking-rules", &json!("x")).expect_err("string body");
    assert_eq!(err.code, "invalid_settings_ranking_rules");
    assert_eq!(err.message, "Invalid value type: expected an array, but found a string: `\"x\"`");
    let err = patch_for_route("ranking-rules", &json!(["foo"])).expect_err("unknown rule");
    assert_eq!(err.message, format!("Invalid value at `[0]`: `foo` {RANKING_RULE_HELP}"));
    let err = patch_for_route("typo-tolerance", &json!({"foo": 1})).expect_err("unknown field");
    assert_eq!(err.code, "invalid_settings_typo_tolerance");
    assert_eq!(
        err.message,
        "Unknown field `foo`: expected one of `enabled`, `minWordSizeForTypos`, `disableOnWords`, \
         `disableOnAttributes`, `disableOnNumbers`"
    );
    let err = patch_for_route("proximity-precision", &json!("x")).expect_err("unknown value");
    assert_eq!(err.message, "Unknown value `x`: expected one of `byWord`, `byAttribute`");
    let err = patch_for_route("nope", &json!([])).expect_err("unknown route");
    assert_eq!(err.code, "not_found");
    assert_eq!(err.status.as_u16(), 404);
}
