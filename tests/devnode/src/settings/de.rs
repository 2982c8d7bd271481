//! Typed reading of a JSON settings payload with Meilisearch's (deserr's) error messages:
//! `Invalid value type at `.x`: expected an array, but found a string: `"y"``, `Unknown field`,
//! `Unknown value`, `Missing field` and `Invalid value at`.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The error code every error raised while reading one settings field carries, e.g.
/// `invalid_settings_ranking_rules`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub code: &'a str,
}

/// `.a.b[0]` style location; the root is the empty string.
pub(super) fn at_key(loc: &str, key: &str) -> String {
    format!("{loc}.{key}")
}

pub(super) fn at_index(loc: &str, index: usize) -> String {
    format!("{loc}[{index}]")
}

/// How deserr names the kind of a value, followed by the value itself.
pub(super) fn found(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a positive integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a float",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{kind}: `{value}`")
}

pub(super) fn type_error(ctx: Ctx<'_>, loc: &str, expected: &str, value: &Value) -> ApiError {
    let at = if loc.is_empty() { String::new() } else { format!(" at `{loc}`") };
    ApiError::new(
        ctx.code,
        format!("Invalid value type{at}: expected {expected}, but found {}", found(value)),
    )
}

pub(super) fn invalid_value(ctx: Ctx<'_>, loc: &str, message: &str) -> ApiError {
    let at = if loc.is_empty() { String::new() } else { format!(" at `{loc}`") };
    ApiError::new(ctx.code, format!("Invalid value{at}: {message}"))
}

fn expected_list(expected: &[&str]) -> String {
    expected.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
}

pub(super) fn unknown_field(ctx: Ctx<'_>, loc: &str, key: &str, expected: &[&str]) -> ApiError {
    let inside = if loc.is_empty() { String::new() } else { format!(" inside `{loc}`") };
    ApiError::new(
        ctx.code,
        format!(
            "Unknown field `{key}`{inside}: {}expected one of {}",
            did_you_mean(key, expected),
            expected_list(expected)
        ),
    )
}

pub(super) fn unknown_value(ctx: Ctx<'_>, loc: &str, value: &str, expected: &[&str]) -> ApiError {
    let at = if loc.is_empty() { String::new() } else { format!(" at `{loc}`") };
    ApiError::new(
        ctx.code,
        format!(
            "Unknown value `{value}`{at}: {}expected one of {}",
            did_you_mean(value, expected),
            expected_list(expected)
        ),
    )
}

pub(super) fn missing_field(ctx: Ctx<'_>, loc: &str, field: &str) -> ApiError {
    let inside = if loc.is_empty() { String::new() } else { format!(" inside `{loc}`") };
    ApiError::new(ctx.code, format!("Missing field `{field}`{inside}"))
}

/// `did you mean `x`? ` when one expected name is close to `given` (fewer edits than half its
/// length), else nothing.
fn did_you_mean(given: &str, expected: &[&str]) -> String {
    let limit = given.chars().count() / 2;
    expected
        .iter()
        .map(|e| (levenshtein(given, e), *e))
        .filter(|(d, _)| *d < limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| format!("did you mean `{e}`? "))
        .unwrap_or_default()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(cur).min(row[j]) };
            prev = cur;
        }
    }
    row[b.len()]
}

pub(super) fn object<'v>(
    ctx: Ctx<'_>,
    loc: &str,
    value: &'v Value,
) -> Result<&'v Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| type_error(ctx, loc, "an object", value))
}

/// An object whose keys are all in `allowed`; keys are checked in sorted order, as Meilisearch
/// reads them.
pub(super) fn object_with<'v>(
    ctx: Ctx<'_>,
    loc: &str,
    value: &'v Value,
    allowed: &[&str],
) -> Result<&'v Map<String, Value>, ApiError> {
    let obj = object(ctx, loc, value)?;
    if let Some(key) = sorted_keys(obj).into_iter().find(|k| !allowed.contains(&k.as_str())) {
        return Err(unknown_field(ctx, loc, key, allowed));
    }
    Ok(obj)
}

pub(super) fn sorted_keys(obj: &Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = obj.keys().collect();
    keys.sort();
    keys
}

pub(super) fn array<'v>(
    ctx: Ctx<'_>,
    loc: &str,
    value: &'v Value,
) -> Result<&'v Vec<Value>, ApiError> {
    value.as_array().ok_or_else(|| type_error(ctx, loc, "an array", value))
}

pub(super) fn string<'v>(ctx: Ctx<'_>, loc: &str, value: &'v Value) -> Result<&'v str, ApiError> {
    value.as_str().ok_or_else(|| type_error(ctx, loc, "a string", value))
}

pub(super) fn boolean(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<bool, ApiError> {
    value.as_bool().ok_or_else(|| type_error(ctx, loc, "a boolean", value))
}

pub(super) fn positive_integer(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<u64, ApiError> {
    value.as_u64().ok_or_else(|| type_error(ctx, loc, "a positive integer", value))
}

/// A `u8` field: a positive integer, at most 255.
pub(super) fn small_integer(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<u8, ApiError> {
    let n = positive_integer(ctx, loc, value)?;
    u8::try_from(n).map_err(|_| {
        invalid_value(
            ctx,
            loc,
            &format!(
                "value: `{n}` is too large to be deserialized, maximum value authorized is `255`"
            ),
        )
    })
}

/// An array of strings, in the given order.
pub(super) fn strings(ctx: Ctx<'_>, loc: &str, value: &Value) -> Result<Vec<String>, ApiError> {
    array(ctx, loc, value)?
        .iter()
        .enumerate()
        .map(|(i, item)| string(ctx, &at_index(loc, i), item).map(str::to_string))
        .collect()
}

/// A string that must be one of `allowed`.
pub(super) fn one_of<'v>(
    ctx: Ctx<'_>,
    loc: &str,
    value: &'v Value,
    allowed: &[&str],
) -> Result<&'v str, ApiError> {
    let s = string(ctx, loc, value)?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(unknown_value(ctx, loc, s, allowed))
    }
}

/// The value with the keys of every object, at every depth, sorted.
pub(super) fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// `rankingRules` → `ranking_rules`.
pub(super) fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
