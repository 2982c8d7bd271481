//! `POST /indexes/{uid}/fields`: every field of the index's documents, in order of first
//! appearance, with what the settings make of it (displayed, searchable, sortable, filterable,
//! distinct, ranking rule, locales).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::{auth, check_uid, json_body, ok_json};
use crate::error::ApiError;
use crate::settings::Settings;
use crate::state::Node;

fn matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return name.starts_with(prefix);
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return name.ends_with(suffix);
    }
    pattern == name
}

fn filterable(settings: &Settings, name: &str) -> Value {
    let sort_by = settings
        .faceting
        .sort_facet_values_by
        .get(name)
        .or_else(|| settings.faceting.sort_facet_values_by.get("*"))
        .cloned()
        .unwrap_or_else(|| "alpha".into());
    for item in &settings.filterable_attributes {
        let (patterns, features): (Vec<&str>, Option<&Value>) = match item {
            Value::String(s) => (vec![s.as_str()], None),
            Value::Object(obj) => (
                obj.get("attributePatterns")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default(),
                obj.get("features"),
            ),
            _ => continue,
        };
        if patterns.iter().any(|p| matches(p, name)) {
            let feature = |path: &[&str], default: bool| {
                let mut value = features;
                for key in path {
                    value = value.and_then(|v| v.get(*key));
                }
                value.and_then(Value::as_bool).unwrap_or(default)
            };
            return json!({
                "enabled": true,
                "equality": feature(&["filter", "equality"], true),
                "comparison": feature(&["filter", "comparison"], features.is_none()),
                "facetSearch": feature(&["facetSearch"], features.is_none()),
                "sortBy": sort_by,
            });
        }
    }
    json!({"enabled": false, "equality": false, "comparison": false, "facetSearch": false, "sortBy": sort_by})
}

fn field(settings: &Settings, name: &str) -> Value {
    let listed = |list: &[String]| list.iter().any(|p| matches(p, name));
    let ranking = settings.ranking_rules.iter().find_map(|rule| {
        let (attribute, order) = rule.rsplit_once(':')?;
        (attribute == name).then(|| json!({"enabled": true, "order": order}))
    });
    json!({
        "name": name,
        "displayed": {"enabled": listed(&settings.displayed_attributes)},
        "searchable": {"enabled": listed(&settings.searchable_attributes)},
        "sortable": {"enabled": settings.sortable_attributes.contains(name)},
        "distinct": {"enabled": settings.distinct_attribute.as_deref() == Some(name)},
        "rankingRule": ranking.unwrap_or_else(|| json!({"enabled": false})),
        "filterable": filterable(settings, name),
        "localized": {"locales": []},
    })
}

pub async fn list_fields(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "indexes.get", Some(&uid))?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        json_body(&headers, &body)?
    };
    let obj = body.as_object().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found `{body}`"),
        )
    })?;
    let count = |key: &str| -> Result<Option<usize>, ApiError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                ApiError::new(
                    "bad_request",
                    format!("Invalid value type at `.{key}`: expected a positive integer, but found `{v}`"),
                )
            }),
        }
    };
    let offset = count("offset")?.unwrap_or(0);
    let limit = count("limit")?.unwrap_or(20);
    if let Some(unknown) = obj.keys().find(|k| !matches!(k.as_str(), "offset" | "limit" | "filter"))
    {
        return Err(ApiError::new(
            "bad_request",
            format!("Unknown field `{unknown}`: expected one of `offset`, `limit`, `filter`"),
        ));
    }
    let db = node.db();
    let index = db.index(&uid)?;
    let all: Vec<Value> =
        index.field_order.iter().map(|name| field(&index.settings, name)).collect();
    let total = all.len();
    let page: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(ok_json(json!({"results": page, "offset": offset, "limit": limit, "total": total})))
}
