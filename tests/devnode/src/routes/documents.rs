//! Document routes: add, update, get, browse, fetch and the three kinds of deletion.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{accepted, auth, check_uid, comma_list, json_body, ok_json, parse_usize, query_pairs};
use crate::documents::{parse_payload, select_fields, PayloadFormat};
use crate::error::ApiError;
use crate::filter::{parse_filter, Filter};
use crate::search::sort_documents;
use crate::search::vectors::{document_view, VECTORS_FIELD};
use crate::state::Node;
use crate::tasks::{TaskKind, WriteMethod};

pub async fn add_or_replace(
    state: State<Arc<Node>>,
    headers: HeaderMap,
    path: Path<String>,
    query: RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(state, headers, path, query, body, WriteMethod::Replace)
}

pub async fn add_or_update(
    state: State<Arc<Node>>,
    headers: HeaderMap,
    path: Path<String>,
    query: RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    write(state, headers, path, query, body, WriteMethod::Update)
}

fn write(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
    method: WriteMethod,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.add", Some(&uid))?;
    let mut primary_key = None;
    let mut delimiter = b',';
    let mut skip_creation = false;
    for (key, value) in query_pairs(q.as_deref()) {
        match key.as_str() {
            "primaryKey" => primary_key = Some(value),
            "csvDelimiter" => {
                delimiter = match value.as_bytes() {
                    [b] if b.is_ascii() => *b,
                    _ => return Err(ApiError::new("invalid_document_csv_delimiter", format!("Invalid value in parameter `csvDelimiter`: expected a string of one character, but found the following string of {} characters: `{value}`", value.chars().count()))),
                }
            }
            "skipCreation" => {
                skip_creation = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::new("invalid_skip_creation", format!("Invalid value in parameter `skipCreation`: could not parse `{value}` as a boolean, expected either `true` or `false`"))),
                }
            }
            "customMetadata" => {}
            other => return Err(ApiError::new("bad_request", format!("Unknown parameter `{other}`: expected one of `primaryKey`, `csvDelimiter`, `customMetadata`, `skipCreation`"))),
        }
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = PayloadFormat::from_content_type(content_type)?;
    let documents = parse_payload(&body, format, delimiter)?;
    let task = node.enqueue(
        Some(uid),
        TaskKind::DocumentAdditionOrUpdate {
            documents: std::sync::Arc::new(documents),
            primary_key,
            method,
            skip_creation,
        },
    );
    Ok(accepted(&task))
}

/// Options shared by browsing (`GET`) and fetching (`POST .../fetch`).
struct Browse {
    offset: usize,
    limit: usize,
    fields: Option<Vec<String>>,
    filter: Option<Filter>,
    ids: Option<Vec<String>>,
    retrieve_vectors: bool,
    sort: Vec<String>,
}

fn invalid_filter(e: crate::filter::FilterError) -> ApiError {
    ApiError::new("invalid_document_filter", e.message)
}

fn run_browse(node: &Node, uid: &str, browse: Browse) -> Result<Response, ApiError> {
    let mut db = node.db();
    let index = db.index(uid)?;
    if let Some(filter) = &browse.filter {
        filter
            .check_filterable(uid, &index.settings.filterable_patterns())
            .map_err(invalid_filter)?;
    }
    let positions = matching_positions(&mut db, uid, &browse)?;
    let index = db.index(uid)?;
    let mut matching: Vec<&Map<String, Value>> = positions
        .iter()
        .filter_map(|position| index.documents.get_index(*position).map(|(_, doc)| doc))
        .collect();
    if !browse.sort.is_empty() {
        sort_documents(index, &browse.sort, &mut matching)?;
    }
    let results: Vec<Value> = matching
        .iter()
        .skip(browse.offset)
        .take(browse.limit)
        .map(|doc| {
            Value::Object(browse_view(
                &index.settings,
                doc,
                browse.fields.as_deref(),
                browse.retrieve_vectors,
            ))
        })
        .collect();
    Ok(ok_json(json!({
        "results": results,
        "offset": browse.offset,
        "limit": browse.limit,
        "total": matching.len(),
    })))
}

/// A document as a browse shows it: its vectors as `retrieve_vectors` asks, then only `fields`
/// when given. The same as [`select_fields`] of [`document_view`], with one copy of the
/// document instead of two, and none of the fields left out.
fn browse_view(
    settings: &crate::settings::Settings,
    doc: &Map<String, Value>,
    fields: Option<&[String]>,
    retrieve_vectors: bool,
) -> Map<String, Value> {
    let list = match fields {
        Some(list) if !list.iter().any(|f| f == "*") => list,
        _ => return document_view(settings, doc, retrieve_vectors),
    };
    let selected = |key: &str| {
        list.iter().any(|f| {
            key == f
                || (key.len() > f.len()
                    && key.starts_with(f.as_str())
                    && key[f.len()..].starts_with('.'))
        })
    };
    if doc.contains_key(VECTORS_FIELD) || selected(VECTORS_FIELD) {
        // Vectors move within the document: kept on the general path.
        return select_fields(&document_view(settings, doc, retrieve_vectors), fields);
    }
    doc.iter().filter(|(k, _)| selected(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The positions of the documents `browse`'s ids and filter match in `uid`, from the filter
/// cache when nothing changed since the same question was last asked.
fn matching_positions(
    db: &mut crate::state::Db,
    uid: &str,
    browse: &Browse,
) -> Result<std::sync::Arc<Vec<usize>>, ApiError> {
    let key = format!("{:?}|{:?}", browse.filter, browse.ids);
    let generation = db.generation;
    db.filter_cache.retain(|cache| cache.generation == generation);
    if let Some(cache) = db.filter_cache.iter().find(|cache| cache.uid == uid && cache.key == key) {
        return Ok(std::sync::Arc::clone(&cache.positions));
    }
    let index = db.index(uid)?;
    let positions: Vec<usize> = index
        .documents
        .iter()
        .enumerate()
        .filter(|(_, (id, _))| browse.ids.as_ref().is_none_or(|ids| ids.contains(id)))
        .filter(|(_, (_, doc))| browse.filter.as_ref().is_none_or(|f| f.matches(doc)))
        .map(|(position, _)| position)
        .collect();
    let positions = std::sync::Arc::new(positions);
    if db.filter_cache.len() == crate::state::FILTER_CACHE_ENTRIES {
        db.filter_cache.remove(0);
    }
    db.filter_cache.push(crate::state::FilterCache {
        uid: uid.to_owned(),
        generation,
        key,
        positions: std::sync::Arc::clone(&positions),
    });
    Ok(positions)
}

/// Parse the `retrieveVectors` query parameter.
fn retrieve_vectors_param(value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::new("invalid_document_retrieve_vectors", format!("Invalid value in parameter `retrieveVectors`: could not parse `{value}` as a boolean, expected either `true` or `false`"))),
    }
}

pub async fn browse(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.get", Some(&uid))?;
    let mut browse = Browse {
        offset: 0,
        limit: 20,
        fields: None,
        filter: None,
        ids: None,
        retrieve_vectors: false,
        sort: Vec::new(),
    };
    for (key, value) in query_pairs(q.as_deref()) {
        match key.as_str() {
            "offset" => browse.offset = parse_usize("offset", &value, "invalid_document_offset")?,
            "limit" => browse.limit = parse_usize("limit", &value, "invalid_document_limit")?,
            "fields" => browse.fields = Some(comma_list(&value)),
            "ids" => browse.ids = Some(comma_list(&value)),
            "filter" => browse.filter = parse_filter(&Value::String(value)).map_err(invalid_filter)?,
            "retrieveVectors" => browse.retrieve_vectors = retrieve_vectors_param(&value)?,
            "sort" => browse.sort = comma_list(&value),
            other => return Err(ApiError::new("bad_request", format!("Unknown parameter `{other}`: expected one of `offset`, `limit`, `fields`, `retrieveVectors`, `ids`, `filter`, `sort`"))),
        }
    }
    run_browse(&node, &uid, browse)
}

pub async fn fetch(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.get", Some(&uid))?;
    let body = json_body(&headers, &body)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::new("bad_request", "Invalid value type: expected an object"))?;
    let mut browse = Browse {
        offset: 0,
        limit: 20,
        fields: None,
        filter: None,
        ids: None,
        retrieve_vectors: false,
        sort: Vec::new(),
    };
    for (key, value) in obj {
        let count = |code: &str| {
            value.as_u64().map(|n| n as usize).ok_or_else(|| ApiError::new(code, format!("Invalid value type at `.{key}`: expected a positive integer, but found {value}")))
        };
        let strings = |code: &str| -> Result<Option<Vec<String>>, ApiError> {
            match value {
                Value::Null => Ok(None),
                Value::Array(items) => Ok(Some(
                    items
                        .iter()
                        .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
                        .collect(),
                )),
                other => Err(ApiError::new(
                    code,
                    format!("Invalid value type at `.{key}`: expected an array, but found {other}"),
                )),
            }
        };
        match key.as_str() {
            "offset" => browse.offset = count("invalid_document_offset")?,
            "limit" => browse.limit = count("invalid_document_limit")?,
            "fields" => browse.fields = strings("invalid_document_fields")?,
            "ids" => browse.ids = strings("invalid_document_ids")?,
            "filter" => browse.filter = parse_filter(value).map_err(invalid_filter)?,
            "retrieveVectors" => {
                browse.retrieve_vectors = value.as_bool().ok_or_else(|| ApiError::new("invalid_document_retrieve_vectors", format!("Invalid value type at `.retrieveVectors`: expected a boolean, but found {value}")))?
            }
            "sort" => browse.sort = strings("invalid_document_sort")?.unwrap_or_default(),
            other => return Err(ApiError::new("bad_request", format!("Unknown field `{other}`: expected one of `offset`, `limit`, `fields`, `retrieveVectors`, `ids`, `filter`, `sort`"))),
        }
    }
    run_browse(&node, &uid, browse)
}

pub async fn get_one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path((uid, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.get", Some(&uid))?;
    let mut fields = None;
    let mut retrieve_vectors = false;
    for (key, value) in query_pairs(q.as_deref()) {
        match key.as_str() {
            "fields" => fields = Some(comma_list(&value)),
            "retrieveVectors" => retrieve_vectors = retrieve_vectors_param(&value)?,
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!(
                        "Unknown parameter `{other}`: expected one of `fields`, `retrieveVectors`"
                    ),
                ))
            }
        }
    }
    let db = node.db();
    let index = db.index(&uid)?;
    let doc = index.documents.get(&id).ok_or_else(|| {
        ApiError::new("document_not_found", format!("Document `{id}` not found."))
    })?;
    let shown = document_view(&index.settings, doc, retrieve_vectors);
    Ok(ok_json(Value::Object(select_fields(&shown, fields.as_deref()))))
}

pub async fn delete_one(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path((uid, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.delete", Some(&uid))?;
    Ok(accepted(
        &node.enqueue(Some(uid), TaskKind::DocumentDeletionByIds { ids: vec![Value::String(id)] }),
    ))
}

pub async fn delete_batch(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.delete", Some(&uid))?;
    let body = json_body(&headers, &body)?;
    let ids = body.as_array().cloned().ok_or_else(|| {
        ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an array, but found {body}"),
        )
    })?;
    if let Some(bad) = ids.iter().find(|id| !matches!(id, Value::String(_) | Value::Number(_))) {
        return Err(ApiError::new(
            "bad_request",
            format!(
                "Invalid value type at `[0]`: expected a string or an integer, but found {bad}"
            ),
        ));
    }
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::DocumentDeletionByIds { ids })))
}

pub async fn delete_by_filter(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.delete", Some(&uid))?;
    let body = json_body(&headers, &body)?;
    let filter = body
        .get("filter")
        .cloned()
        .ok_or_else(|| ApiError::new("missing_document_filter", "Missing field `filter`"))?;
    if let Some(field) = body.as_object().and_then(|o| o.keys().find(|k| k.as_str() != "filter")) {
        return Err(ApiError::new(
            "bad_request",
            format!("Unknown field `{field}`: expected one of `filter`"),
        ));
    }
    if parse_filter(&filter).map_err(invalid_filter)?.is_none() {
        return Err(ApiError::new(
            "invalid_document_filter",
            "Sending an empty filter is forbidden.",
        ));
    }
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::DocumentDeletionByFilter { filter })))
}

/// `POST /indexes/{uid}/documents/edit`: `{function, filter?, context?}`, refused with
/// `feature_not_enabled` unless the `editDocumentsByFunction` experimental feature is on. The
/// filter's syntax is checked here, the function when the task runs.
pub async fn edit_by_function(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.*", Some(&uid))?;
    let body = json_body(&headers, &body)?;
    let Value::Object(obj) = body else {
        return Err(ApiError::new(
            "bad_request",
            format!("Invalid value type: expected an object, but found {body}"),
        ));
    };
    let mut function = None;
    let mut filter = None;
    let mut context = None;
    for (key, value) in obj {
        match key.as_str() {
            "function" => match value {
                Value::String(text) => function = Some(text),
                other => {
                    return Err(ApiError::new(
                        "bad_request",
                        format!(
                        "Invalid value type at `.function`: expected a string, but found {other}"
                    ),
                    ))
                }
            },
            "filter" => filter = (!value.is_null()).then_some(value),
            "context" => context = (!value.is_null()).then_some(value),
            other => {
                return Err(ApiError::new(
                    "bad_request",
                    format!(
                        "Unknown field `{other}`: expected one of `function`, `filter`, `context`"
                    ),
                ))
            }
        }
    }
    let function =
        function.ok_or_else(|| ApiError::new("bad_request", "Missing field `function`"))?;
    let enabled = node.db().experimental_features.get("editDocumentsByFunction").copied();
    if enabled != Some(true) {
        return Err(ApiError::new(
            "feature_not_enabled",
            "Using the /documents/edit route requires enabling the `edit documents by function` \
             experimental feature. See https://github.com/orgs/meilisearch/discussions/762",
        ));
    }
    if let Some(filter) = &filter {
        parse_filter(filter).map_err(invalid_filter)?;
    }
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::DocumentEdition { function, filter, context })))
}

pub async fn clear(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(uid): Path<String>,
) -> Result<Response, ApiError> {
    check_uid(&uid)?;
    auth(&node, &headers, "documents.delete", Some(&uid))?;
    Ok(accepted(&node.enqueue(Some(uid), TaskKind::DocumentClear)))
}
