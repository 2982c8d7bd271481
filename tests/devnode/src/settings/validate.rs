//! Request-time validation of a settings payload, field by field, and its normalization to what
//! the task's `details` show.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::de::{
    array, at_index, at_key, boolean, invalid_value, missing_field, object, object_with, one_of,
    positive_integer, small_integer, snake_case, sort_keys, sorted_keys, string, strings,
    type_error, unknown_field, Ctx,
};
use super::embedders::normalize_embedders;
use super::{field_for_route, FIELDS};
use crate::error::ApiError;

const PROXIMITY_PRECISIONS: &[&str] = &["byWord", "byAttribute"];
const PREFIX_SEARCH: &[&str] = &["indexingTime", "disabled"];
const FACET_SORTS: &[&str] = &["alpha", "count"];
const TYPO_FIELDS: &[&str] = &[
    "enabled",
    "minWordSizeForTypos",
    "disableOnWords",
    "disableOnAttributes",
    "disableOnNumbers",
];
const MIN_WORD_SIZE_FIELDS: &[&str] = &["oneTypo", "twoTypos"];
const FACETING_FIELDS: &[&str] = &["maxValuesPerFacet", "sortFacetValuesBy"];
const PAGINATION_FIELDS: &[&str] = &["maxTotalHits"];
const FILTERABLE_RULE_FIELDS: &[&str] = &["attributePatterns", "features"];
const FILTERABLE_FEATURE_FIELDS: &[&str] = &["facetSearch", "filter"];
const FILTER_FEATURE_FIELDS: &[&str] = &["equality", "comparison"];
const LOCALIZED_RULE_FIELDS: &[&str] = &["attributePatterns", "locales"];
const BUILTIN_RANKING_RULES: &[&str] = &[
    "words",
    "typo",
    "sort",
    "proximity",
    "attribute",
    "attributeRank",
    "wordPosition",
    "exactness",
];

/// The error code of a settings field: `rankingRules` → `invalid_settings_ranking_rules`.
pub(super) fn code_for(field: &str) -> String {
    format!("invalid_settings_{}", snake_case(field))
}

/// Validate a `PATCH /indexes/{uid}/settings` body and return the normalized patch that the
/// task's `details` show (sets sorted and deduplicated, `*` collapsed, nulls kept).
pub fn validate_patch(body: &Value) -> Result<Value, ApiError> {
    let root = Ctx { code: "bad_request" };
    let obj = object(root, "", body)?;
    let mut out = Map::new();
    for key in sorted_keys(obj) {
        let Some(field) = FIELDS.iter().find(|f| **f == key.as_str()) else {
            return Err(unknown_field(root, "", key, FIELDS));
        };
        out.insert(key.clone(), normalize_field(field, &obj[key.as_str()], &at_key("", field))?);
    }
    Ok(sort_keys(Value::Object(out)))
}

/// Validate the body of `PUT/PATCH /indexes/{uid}/settings/<segment>` and return the equivalent
/// normalized patch `{ "<field>": body }`. An unknown segment is a `not_found` error.
pub fn patch_for_route(segment: &str, body: &Value) -> Result<Value, ApiError> {
    let field = field_for_route(segment).ok_or_else(|| {
        ApiError::new("not_found", format!("`{segment}` is not a settings route."))
    })?;
    let value = normalize_field(field, body, "")?;
    Ok(sort_keys(json!({ field: value })))
}

/// Validate and normalize the value of one field, read at `loc` (`.field` in a whole-settings
/// payload, the root in a sub-route body). Null stays null (it resets the field).
pub(super) fn normalize_field(field: &str, value: &Value, loc: &str) -> Result<Value, ApiError> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let code = code_for(field);
    let ctx = Ctx { code: &code };
    let normalized = match field {
        "displayedAttributes" | "searchableAttributes" => wildcard_list(ctx, loc, value)?,
        "sortableAttributes" | "stopWords" | "nonSeparatorTokens" | "separatorTokens"
        | "dictionary" => string_set(ctx, loc, value)?,
        "filterableAttributes" => filterable_attributes(ctx, loc, value)?,
        "rankingRules" => ranking_rules(ctx, loc, value)?,
        "synonyms" => synonyms(ctx, loc, value)?,
        "distinctAttribute" => Value::from(string(ctx, loc, value)?),
        "proximityPrecision" => Value::from(one_of(ctx, loc, value, PROXIMITY_PRECISIONS)?),
        "prefixSearch" => Value::from(one_of(ctx, loc, value, PREFIX_SEARCH)?),
        "typoTolerance" => typo_tolerance(ctx, loc, value)?,
        "faceting" => faceting(ctx, loc, value)?,
        "pagination" => pagination(ctx, loc, value)?,
        "embedders" => normalize_embedders(ctx, loc, value)?,
        "searchCutoffMs" => Value::from(positive_integer(ctx, loc, value)?),
        "localizedAttributes" => localized_attributes(ctx, loc, value)?,
        "facetSearch" => Value::from(boolean(ctx, loc, value)?),
        _ => return Err(ApiError::internal(format!("`{field}` is not a settings field"))),
    };
    Ok(normalized)
}

/// `displayedAttributes` / `searchableAttributes`: order kept, duplicates dropped, any `*`
/// makes the whole list `["*"]`.
fn wildcard_list(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let items = strings(ctx, loc, value)?;
    if items.iter().any(|s| s == "*") {
        return Ok(json!(["*"]));
    }
    let mut seen = BTreeSet::new();
    Ok(Value::from(items.into_iter().filter(|s| seen.insert(s.clone())).collect::<Vec<_>>()))
}

/// A set of strings: sorted and deduplicated.
fn string_set(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let set: BTreeSet<String> = strings(ctx, loc, value)?.into_iter().collect();
    Ok(Value::from(set.into_iter().collect::<Vec<_>>()))
}

/// Strings, or `{"attributePatterns": [...], "features": {...}}` objects with the features'
/// defaults filled in; order kept.
fn filterable_attributes(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for (i, item) in array(ctx, loc, value)?.iter().enumerate() {
        let loc = at_index(loc, i);
        out.push(match item {
            Value::String(_) => item.clone(),
            Value::Object(_) => filterable_rule(ctx, &loc, item)?,
            other => return Err(type_error(ctx, &loc, "a string or an object", other)),
        });
    }
    Ok(Value::Array(out))
}

fn filterable_rule(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let obj = object_with(ctx, loc, value, FILTERABLE_RULE_FIELDS)?;
    let patterns_loc = at_key(loc, "attributePatterns");
    let patterns = match obj.get("attributePatterns") {
        Some(p) => strings(ctx, &patterns_loc, p)?,
        None => return Err(missing_field(ctx, loc, "attributePatterns")),
    };
    let (mut facet_search, mut equality, mut comparison) = (false, true, false);
    if let Some(features) = obj.get("features") {
        let features_loc = at_key(loc, "features");
        let features = object_with(ctx, &features_loc, features, FILTERABLE_FEATURE_FIELDS)?;
        if let Some(v) = features.get("facetSearch") {
            facet_search = boolean(ctx, &at_key(&features_loc, "facetSearch"), v)?;
        }
        if let Some(filter) = features.get("filter") {
            let filter_loc = at_key(&features_loc, "filter");
            let filter = object_with(ctx, &filter_loc, filter, FILTER_FEATURE_FIELDS)?;
            if let Some(v) = filter.get("equality") {
                equality = boolean(ctx, &at_key(&filter_loc, "equality"), v)?;
            }
            if let Some(v) = filter.get("comparison") {
                comparison = boolean(ctx, &at_key(&filter_loc, "comparison"), v)?;
            }
        }
    }
    Ok(json!({
        "attributePatterns": patterns,
        "features": {
            "facetSearch": facet_search,
            "filter": { "equality": equality, "comparison": comparison },
        },
    }))
}

fn ranking_rules(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let rules = strings(ctx, loc, value)?;
    for (i, rule) in rules.iter().enumerate() {
        if !is_valid_ranking_rule(rule) {
            return Err(invalid_value(
                ctx,
                &at_index(loc, i),
                &format!(
                    "`{rule}` ranking rule is invalid. Valid ranking rules are words, typo, sort, \
                     proximity, attribute, attributeRank, wordPosition, exactness and custom \
                     ranking rules."
                ),
            ));
        }
    }
    Ok(Value::from(rules))
}

/// A built-in rule, or a custom `field:asc` / `field:desc` rule.
fn is_valid_ranking_rule(rule: &str) -> bool {
    if BUILTIN_RANKING_RULES.contains(&rule) {
        return true;
    }
    match rule.rsplit_once(':') {
        Some((field, "asc" | "desc")) => !field.trim().is_empty(),
        _ => false,
    }
}

/// A map of word → array of words; keys sorted, the words kept as given.
fn synonyms(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let obj = object(ctx, loc, value)?;
    let mut out = Map::new();
    for key in sorted_keys(obj) {
        let words = strings(ctx, &at_key(loc, key), &obj[key.as_str()])?;
        out.insert(key.clone(), Value::from(words));
    }
    Ok(Value::Object(out))
}

fn typo_tolerance(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let obj = object_with(ctx, loc, value, TYPO_FIELDS)?;
    let mut out = Map::new();
    for key in sorted_keys(obj) {
        let (key, v) = (key.as_str(), &obj[key.as_str()]);
        let field_loc = at_key(loc, key);
        let normalized = match (key, v) {
            (_, Value::Null) => Value::Null,
            ("enabled" | "disableOnNumbers", v) => Value::from(boolean(ctx, &field_loc, v)?),
            ("minWordSizeForTypos", v) => min_word_size(ctx, &field_loc, v)?,
            (_, v) => string_set(ctx, &field_loc, v)?,
        };
        out.insert(key.to_string(), normalized);
    }
    Ok(Value::Object(out))
}

fn min_word_size(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let obj = object_with(ctx, loc, value, MIN_WORD_SIZE_FIELDS)?;
    let mut out = Map::new();
    for &key in MIN_WORD_SIZE_FIELDS {
        match obj.get(key) {
            None => {}
            Some(Value::Null) => {
                out.insert(key.to_string(), Value::Null);
            }
            Some(v) => {
                out.insert(key.to_string(), Value::from(small_integer(ctx, &at_key(loc, key), v)?));
            }
        }
    }
    if let (Some(one), Some(two)) =
        (out.get("oneTypo").and_then(Value::as_u64), out.get("twoTypos").and_then(Value::as_u64))
    {
        if one > two {
            return Err(min_word_size_error(ctx.code, one, two));
        }
    }
    Ok(Value::Object(out))
}

/// The error for `oneTypo` greater than `twoTypos`.
pub(super) fn min_word_size_error(code: &str, one: u64, two: u64) -> ApiError {
    ApiError::new(
        code,
        format!(
            "`minWordSizeForTypos` setting is invalid. `oneTypo` and `twoTypos` fields should be \
             between `0` and `255`, and `twoTypos` should be greater or equals to `oneTypo` but \
             found `oneTypo: {one}` and twoTypos: {two}`."
        ),
    )
}

fn faceting(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let obj = object_with(ctx, loc, value, FACETING_FIELDS)?;
    let mut out = Map::new();
    if let Some(v) = obj.get("maxValuesPerFacet") {
        let field_loc = at_key(loc, "maxValuesPerFacet");
        let v =
            if v.is_null() { Value::Null } else { positive_integer(ctx, &field_loc, v)?.into() };
        out.insert("maxValuesPerFacet".into(), v);
    }
    if let Some(v) = obj.get("sortFacetValuesBy") {
        let field_loc = at_key(loc, "sortFacetValuesBy");
        let v = if v.is_null() {
            Value::Null
        } else {
            let map = object(ctx, &field_loc, v)?;
            let mut sorts = Map::new();
            for key in sorted_keys(map) {
                let sort = one_of(ctx, &at_key(&field_loc, key), &map[key.as_str()], FACET_SORTS)?;
                sorts.insert(key.clone(), Value::from(sort));
            }
            Value::Object(sorts)
        };
        out.insert("sortFacetValuesBy".into(), v);
    }
    Ok(Value::Object(out))
}

fn pagination(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let obj = object_with(ctx, loc, value, PAGINATION_FIELDS)?;
    let mut out = Map::new();
    if let Some(v) = obj.get("maxTotalHits") {
        let field_loc = at_key(loc, "maxTotalHits");
        let v = match v {
            Value::Null => Value::Null,
            v => match positive_integer(ctx, &field_loc, v)? {
                0 => {
                    return Err(invalid_value(
                        ctx,
                        &field_loc,
                        &format!(
                            "a non-zero integer value lower than `{}` was expected, but found a \
                             zero",
                            usize::MAX
                        ),
                    ))
                }
                n => Value::from(n),
            },
        };
        out.insert("maxTotalHits".into(), v);
    }
    Ok(Value::Object(out))
}

/// An array of `{"attributePatterns": [...], "locales": [...]}` rules.
fn localized_attributes(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for (i, item) in array(ctx, loc, value)?.iter().enumerate() {
        let item_loc = at_index(loc, i);
        let obj = object_with(ctx, &item_loc, item, LOCALIZED_RULE_FIELDS)?;
        let mut rule = Map::new();
        for &key in LOCALIZED_RULE_FIELDS {
            let v = obj.get(key).ok_or_else(|| missing_field(ctx, &item_loc, key))?;
            rule.insert(key.to_string(), Value::from(strings(ctx, &at_key(&item_loc, key), v)?));
        }
        out.push(Value::Object(rule));
    }
    Ok(Value::Array(out))
}
