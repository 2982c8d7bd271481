//! The `embedders` setting: request-time validation of each embedder and the task-time merge
//! into the stored embedders.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::de::{
    at_key, boolean, object, object_with, one_of, positive_integer, sorted_keys, string, Ctx,
};
use crate::error::ApiError;

const CODE: &str = "invalid_settings_embedders";

/// Every embedder field, in the order Meilisearch shows them.
const EMBEDDER_FIELDS: &[&str] = &[
    "source",
    "model",
    "revision",
    "pooling",
    "apiKey",
    "dimensions",
    "binaryQuantized",
    "documentTemplate",
    "documentTemplateMaxBytes",
    "url",
    "indexingFragments",
    "searchFragments",
    "request",
    "response",
    "headers",
    "searchEmbedder",
    "indexingEmbedder",
    "distribution",
];
const SOURCES: &[&str] = &["openAi", "huggingFace", "ollama", "userProvided", "rest", "composite"];
const POOLINGS: &[&str] = &["useModel", "forceMean", "forceCls"];
/// Source given to an embedder created without one.
const DEFAULT_SOURCE: &str = "openAi";
/// The only fields a `userProvided` embedder accepts.
const USER_PROVIDED_FIELDS: &[&str] = &["source", "dimensions", "distribution", "binaryQuantized"];

/// Validate `embedders` (`{name: embedder | null}`); each embedder keeps only the fields given,
/// in Meilisearch's field order.
pub(super) fn normalize_embedders(
    ctx: Ctx<'_>,
    loc: &str,
    value: &Value,
) -> Result<Value, ApiError> {
    let obj = object(ctx, loc, value)?;
    let mut out = Map::new();
    for name in sorted_keys(obj) {
        let embedder = &obj[name.as_str()];
        let normalized = if embedder.is_null() {
            Value::Null
        } else {
            let fields = normalize_embedder(ctx, &at_key(loc, name), name, embedder)?;
            if let Some(source) = fields.get("source").and_then(Value::as_str) {
                check_source_fields(name, source, &fields)?;
            }
            Value::Object(fields)
        };
        out.insert(name.clone(), normalized);
    }
    Ok(Value::Object(out))
}

fn normalize_embedder(
    ctx: Ctx<'_>,
    loc: &str,
    name: &str,
    value: &Value,
) -> Result<Map<String, Value>, ApiError> {
    let obj = object_with(ctx, loc, value, EMBEDDER_FIELDS)?;
    for key in sorted_keys(obj) {
        let v = &obj[key.as_str()];
        let field_loc = at_key(loc, key);
        match (key.as_str(), v) {
            (_, Value::Null) | ("request" | "response", _) => {}
            ("source", v) => {
                one_of(ctx, &field_loc, v, SOURCES)?;
            }
            ("pooling", v) => {
                one_of(ctx, &field_loc, v, POOLINGS)?;
            }
            ("model" | "revision" | "apiKey" | "documentTemplate" | "url", v) => {
                string(ctx, &field_loc, v)?;
            }
            ("dimensions", v) => {
                if positive_integer(ctx, &field_loc, v)? == 0 {
                    return Err(ApiError::new(
                        CODE,
                        format!("`.embedders.{name}.dimensions`: `dimensions` cannot be zero"),
                    ));
                }
            }
            ("documentTemplateMaxBytes", v) => {
                positive_integer(ctx, &field_loc, v)?;
            }
            ("binaryQuantized", v) => {
                boolean(ctx, &field_loc, v)?;
            }
            ("headers", v) => {
                let headers = object(ctx, &field_loc, v)?;
                for header in sorted_keys(headers) {
                    string(ctx, &at_key(&field_loc, header), &headers[header.as_str()])?;
                }
            }
            (_, v) => {
                object(ctx, &field_loc, v)?;
            }
        }
    }
    Ok(canonical(obj))
}

/// The fields of `obj` in Meilisearch's order.
fn canonical(obj: &Map<String, Value>) -> Map<String, Value> {
    EMBEDDER_FIELDS.iter().filter_map(|f| obj.get(*f).map(|v| (f.to_string(), v.clone()))).collect()
}

fn is_set(fields: &Map<String, Value>, field: &str) -> bool {
    fields.get(field).is_some_and(|v| !v.is_null())
}

/// The fields a source requires, and for `userProvided` the fields it refuses.
fn check_source_fields(
    name: &str,
    source: &str,
    fields: &Map<String, Value>,
) -> Result<(), ApiError> {
    let mandatory: &[&str] = match source {
        "userProvided" => &["dimensions"],
        "ollama" => &["model"],
        "rest" => &["url", "request", "response"],
        "composite" => &["searchEmbedder", "indexingEmbedder"],
        _ => &[],
    };
    if let Some(field) = mandatory.iter().find(|f| !is_set(fields, f)) {
        return Err(ApiError::new(
            CODE,
            format!(
                "`.embedders.{name}`: Missing field `{field}` (note: this field is mandatory for \
                 source `{source}`)"
            ),
        ));
    }
    if source == "userProvided" {
        let refused =
            EMBEDDER_FIELDS.iter().find(|f| !USER_PROVIDED_FIELDS.contains(f) && is_set(fields, f));
        if let Some(field) = refused {
            return Err(ApiError::new(
                CODE,
                format!(
                    "`.embedders.{name}`: Field `{field}` unavailable for source `userProvided` \
                     (only available for sources: {}). Available fields: `source`, \
                     `dimensions`, `distribution`, `binaryQuantized`",
                    sources_with(field)
                ),
            ));
        }
    }
    Ok(())
}

/// The sources that accept `field`, as listed in the "unavailable for source" message.
fn sources_with(field: &str) -> &'static str {
    match field {
        "model" => "`huggingFace`, `openAi`, `ollama`",
        "revision" | "pooling" => "`huggingFace`",
        "apiKey" | "url" => "`openAi`, `ollama`, `rest`",
        "request" | "response" | "headers" | "indexingFragments" | "searchFragments" => "`rest`",
        "searchEmbedder" | "indexingEmbedder" => "`composite`",
        _ => "`huggingFace`, `openAi`, `ollama`, `rest`",
    }
}

/// Apply a normalized `embedders` patch to the stored embedders at task time: null removes all
/// (or one) embedder, an object merges field by field into the existing embedder (a new source
/// starts from scratch), then each merged embedder is checked against its source.
pub(super) fn apply_embedders(
    current: &BTreeMap<String, Value>,
    patch: &Value,
) -> Result<BTreeMap<String, Value>, ApiError> {
    let Some(patch) = patch.as_object() else {
        return Ok(BTreeMap::new());
    };
    let mut out = current.clone();
    for name in sorted_keys(patch) {
        let Some(update) = patch[name.as_str()].as_object() else {
            out.remove(name.as_str());
            continue;
        };
        let existing = current.get(name.as_str()).and_then(Value::as_object);
        let old_source = existing.and_then(|e| e.get("source")).and_then(Value::as_str);
        let new_source = match update.get("source") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => DEFAULT_SOURCE,
            None => old_source.unwrap_or(DEFAULT_SOURCE),
        };
        let mut merged = match existing {
            Some(e) if old_source == Some(new_source) => e.clone(),
            _ => Map::new(),
        };
        for (key, v) in update {
            if v.is_null() {
                merged.remove(key);
            } else {
                merged.insert(key.clone(), v.clone());
            }
        }
        merged.insert("source".into(), Value::from(new_source));
        check_source_fields(name, new_source, &merged)?;
        if old_source == Some("userProvided") && new_source == "userProvided" {
            let old = existing.and_then(|e| e.get("dimensions")).and_then(Value::as_u64);
            let new = merged.get("dimensions").and_then(Value::as_u64);
            if let (Some(old), Some(new)) = (old, new) {
                if old != new {
                    return Err(ApiError::new(
                        CODE,
                        format!(
                            "`.embedders.{name}.dimensions`: cannot change the dimensions of the \
                             `userProvided` embedder `{name}` from `{old}` to `{new}`; remove the \
                             embedder first"
                        ),
                    ));
                }
            }
        }
        out.insert(name.clone(), Value::Object(canonical(&merged)));
    }
    Ok(out)
}
