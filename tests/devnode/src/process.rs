//! Applying one task to the node's state: the work each task type does, its final `details`,
//! and the error it fails with.

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::documents::{document_id, infer_primary_key};
use crate::error::ApiError;
use crate::filter::parse_filter;
use crate::index::Index;
use crate::state::Db;
use crate::tasks::{TaskKind, TaskStatus, WriteMethod};

/// Run task `uid` (already `processing`) and record its outcome.
pub fn process_task(db: &mut Db, uid: u32) {
    let Some(task) = db.tasks.get_mut(&uid) else { return };
    if task.status != TaskStatus::Processing {
        return; // canceled while it waited
    }
    // The documents move into the index: a finished task keeps only its details.
    let documents = match &mut task.kind {
        TaskKind::DocumentAdditionOrUpdate { documents, .. } => {
            std::sync::Arc::try_unwrap(std::mem::take(documents))
                .unwrap_or_else(|shared| shared.as_ref().clone())
        }
        _ => Vec::new(),
    };
    let kind = task.kind.clone();
    let index_uid = task.index_uid.clone();
    let mut details = task.details.clone();
    db.generation += 1;
    let outcome = apply(db, uid, index_uid.as_deref(), (&kind, documents), &mut details);
    let now = OffsetDateTime::now_utc();
    if outcome.is_ok() && writes_index(&kind) {
        db.last_update = Some(now);
    }
    let task = db.tasks.get_mut(&uid).expect("the task being processed exists");
    match outcome {
        Ok(()) => {
            task.details = details;
            task.transition(TaskStatus::Succeeded, now).expect("processing → succeeded");
        }
        Err(error) => {
            task.details = failed_details(&kind, details);
            task.error = Some(error);
            task.transition(TaskStatus::Failed, now).expect("processing → failed");
        }
    }
}

fn writes_index(kind: &TaskKind) -> bool {
    !matches!(
        kind,
        TaskKind::TaskCancelation { .. }
            | TaskKind::TaskDeletion { .. }
            | TaskKind::DumpCreation
            | TaskKind::SnapshotCreation
    )
}

/// Details of a failed task: counts of work done become 0.
fn failed_details(kind: &TaskKind, mut details: Value) -> Value {
    let zero = match kind {
        TaskKind::DocumentAdditionOrUpdate { .. } => "indexedDocuments",
        TaskKind::IndexDeletion
        | TaskKind::DocumentDeletionByIds { .. }
        | TaskKind::DocumentDeletionByFilter { .. }
        | TaskKind::DocumentClear => "deletedDocuments",
        TaskKind::DocumentEdition { .. } => {
            details["editedDocuments"] = json!(0);
            "deletedDocuments"
        }
        _ => return details,
    };
    details[zero] = json!(0);
    details
}

/// Applies `kind` (with the documents an addition carries, taken out of it) to `db`.
fn apply(
    db: &mut Db,
    task_uid: u32,
    index_uid: Option<&str>,
    (kind, documents): (&TaskKind, Vec<crate::index::Document>),
    details: &mut Value,
) -> Result<(), ApiError> {
    let now = OffsetDateTime::now_utc();
    let uid = index_uid.unwrap_or_default();
    match kind {
        TaskKind::IndexCreation { primary_key } => {
            if db.indexes.contains_key(uid) {
                return Err(ApiError::new(
                    "index_already_exists",
                    format!("Index `{uid}` already exists."),
                ));
            }
            db.indexes.insert(uid.to_string(), Index::new(uid, primary_key.clone(), now));
        }
        TaskKind::IndexUpdate { primary_key, new_uid } => {
            if let Some(new_uid) = new_uid {
                if db.indexes.contains_key(new_uid) {
                    return Err(ApiError::new(
                        "index_already_exists",
                        format!("Index `{new_uid}` already exists."),
                    ));
                }
                let mut index =
                    db.indexes.remove(uid).ok_or_else(|| ApiError::index_not_found(uid))?;
                index.uid = new_uid.clone();
                db.indexes.insert(new_uid.clone(), index);
                details["oldIndexUid"] = json!(uid);
                details["newIndexUid"] = json!(new_uid);
            }
            let uid = new_uid.as_deref().unwrap_or(uid);
            let index = existing(db, uid)?;
            if let Some(pk) = primary_key {
                if index.primary_key.as_deref() != Some(pk.as_str()) {
                    if !index.documents.is_empty() {
                        return Err(ApiError::new(
                            "index_primary_key_already_exists",
                            format!(
                                "Index `{uid}`: Index already has a primary key: `{}`.",
                                index.primary_key.clone().unwrap_or_default()
                            ),
                        ));
                    }
                    index.primary_key = Some(pk.clone());
                }
            }
            index.updated_at = now;
        }
        TaskKind::IndexDeletion => {
            let index = db.indexes.remove(uid).ok_or_else(|| ApiError::index_not_found(uid))?;
            details["deletedDocuments"] = json!(index.documents.len());
        }
        TaskKind::IndexSwap { swaps } => swap_indexes(db, swaps)?,
        TaskKind::DocumentAdditionOrUpdate { primary_key, method, skip_creation, .. } => {
            let index =
                db.indexes.entry(uid.to_string()).or_insert_with(|| Index::new(uid, None, now));
            let write = (*method, *skip_creation);
            let indexed = add_documents(index, documents, primary_key.as_deref(), write)?;
            index.updated_at = now;
            details["indexedDocuments"] = json!(indexed);
        }
        TaskKind::DocumentDeletionByIds { ids } => {
            let index = existing(db, uid)?;
            let mut deleted = 0;
            for id in ids {
                let key = match id {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if index.documents.shift_remove(&key).is_some() {
                    deleted += 1;
                }
            }
            index.updated_at = now;
            details["deletedDocuments"] = json!(deleted);
        }
        TaskKind::DocumentDeletionByFilter { filter } => {
            let index = existing(db, uid)?;
            let invalid =
                |e: crate::filter::FilterError| ApiError::new("invalid_document_filter", e.message);
            let parsed = parse_filter(filter).map_err(invalid)?;
            let before = index.documents.len();
            if let Some(parsed) = parsed {
                parsed
                    .check_filterable(uid, &index.settings.filterable_patterns())
                    .map_err(invalid)?;
                index.documents.retain(|_, doc| !parsed.matches(doc));
            }
            index.updated_at = now;
            details["deletedDocuments"] = json!(before - index.documents.len());
        }
        TaskKind::DocumentClear => {
            let index = existing(db, uid)?;
            details["deletedDocuments"] = json!(index.documents.len());
            index.documents.clear();
            index.updated_at = now;
        }
        TaskKind::DocumentEdition { function, filter, context } => {
            let index = existing(db, uid)?;
            let invalid =
                |e: crate::filter::FilterError| ApiError::new("invalid_document_filter", e.message);
            let parsed = match filter {
                Some(filter) => parse_filter(filter).map_err(invalid)?,
                None => None,
            };
            if let Some(parsed) = &parsed {
                parsed
                    .check_filterable(uid, &index.settings.filterable_patterns())
                    .map_err(invalid)?;
            }
            let matches =
                |doc: &crate::index::Document| parsed.as_ref().is_none_or(|f| f.matches(doc));
            let done = crate::edit::edit_documents(index, function, context.as_ref(), matches)?;
            index.updated_at = now;
            details["editedDocuments"] = json!(done.edited);
            details["deletedDocuments"] = json!(done.deleted);
        }
        TaskKind::SettingsUpdate { patch } => {
            let index =
                db.indexes.entry(uid.to_string()).or_insert_with(|| Index::new(uid, None, now));
            let mut settings = index.settings.clone();
            settings.apply_patch(patch)?;
            index.settings = settings;
            index.updated_at = now;
        }
        TaskKind::TaskCancelation { uids, .. } => {
            let mut canceled = 0;
            for uid in uids {
                if let Some(task) = db.tasks.get_mut(uid) {
                    if !task.status.is_terminal()
                        && task.transition(TaskStatus::Canceled, now).is_ok()
                    {
                        task.canceled_by = Some(task_uid);
                        canceled += 1;
                    }
                }
            }
            details["canceledTasks"] = json!(canceled);
        }
        TaskKind::TaskDeletion { uids, .. } => {
            let mut deleted = 0;
            for uid in uids {
                if db.tasks.get(uid).is_some_and(|t| t.status.is_terminal()) {
                    db.tasks.remove(uid);
                    deleted += 1;
                }
            }
            details["deletedTasks"] = json!(deleted);
        }
        TaskKind::DumpCreation => {
            // A development node keeps nothing on disk: the dump is only named.
            let format = time::macros::format_description!(
                "[year][month][day]-[hour][minute][second][subsecond digits:3]"
            );
            details["dumpUid"] = json!(now.format(&format).unwrap_or_default());
        }
        TaskKind::SnapshotCreation => {}
        TaskKind::IndexCompaction => {
            let index = existing(db, uid)?;
            // Held in memory, the index has nothing to compact: the same size before and after.
            let bytes: usize =
                index.documents.values().map(|d| Value::Object(d.clone()).to_string().len()).sum();
            let size = format!("{} KiB", bytes.div_ceil(1024));
            details["preCompactionSize"] = json!(size);
            details["postCompactionSize"] = json!(size);
        }
    }
    Ok(())
}

fn existing<'a>(db: &'a mut Db, uid: &str) -> Result<&'a mut Index, ApiError> {
    db.indexes.get_mut(uid).ok_or_else(|| ApiError::index_not_found(uid))
}

/// Add or update documents; the whole batch fails on the first invalid document.
fn add_documents(
    index: &mut Index,
    documents: Vec<crate::index::Document>,
    requested_pk: Option<&str>,
    (method, skip_creation): (WriteMethod, bool),
) -> Result<usize, ApiError> {
    let primary_key = match (&index.primary_key, requested_pk) {
        (Some(pk), Some(req)) if pk != req => {
            return Err(ApiError::new(
                "index_primary_key_already_exists",
                format!("Index `{}`: Index already has a primary key: `{pk}`.", index.uid),
            ))
        }
        (Some(pk), _) => pk.clone(),
        (None, Some(req)) => req.to_string(),
        (None, None) => infer_primary_key(documents.first())?,
    };
    let mut ids = Vec::with_capacity(documents.len());
    for doc in &documents {
        let id = document_id(doc, &primary_key)?;
        if let Some(geo) = doc.get("_geo") {
            validate_geo(&id, geo)?;
        }
        crate::search::vectors::validate_document(&index.uid, &index.settings, &id, doc)?;
        ids.push(id);
    }
    index.primary_key = Some(primary_key);
    let mut indexed = 0;
    for (id, doc) in ids.into_iter().zip(documents) {
        if skip_creation && !index.documents.contains_key(&id) {
            continue;
        }
        indexed += 1;
        index.note_fields(&doc);
        match (method, index.documents.get_mut(&id)) {
            (WriteMethod::Update, Some(existing)) => existing.extend(doc),
            (_, Some(existing)) => *existing = doc,
            (_, None) => {
                index.documents.insert(id, doc);
            }
        }
    }
    Ok(indexed)
}

/// `_geo` must be null or `{"lat", "lng"}` with numbers (or numeric strings) in range.
fn validate_geo(id: &str, geo: &Value) -> Result<(), ApiError> {
    let bad = |msg: String| {
        ApiError::new(
            "invalid_document_geo_field",
            format!("The `_geo` field in the document with the id: `\"{id}\"` {msg}"),
        )
    };
    match geo {
        Value::Null => Ok(()),
        Value::Object(obj) => {
            for (name, range) in [("lat", 90.0), ("lng", 180.0)] {
                let value = obj
                    .get(name)
                    .ok_or_else(|| bad(format!("does not contain the required `{name}` field.")))?;
                let number = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                match number {
                    Some(n) if (-range..=range).contains(&n) => {}
                    _ => return Err(bad(format!("contains an invalid `{name}`: `{value}`."))),
                }
            }
            Ok(())
        }
        other => Err(bad(format!("is not an object: `{other}`."))),
    }
}

fn swap_indexes(db: &mut Db, swaps: &[Value]) -> Result<(), ApiError> {
    // `rename: true` gives the first index the second name, which must be free.
    let pairs: Vec<(String, String, bool)> = swaps
        .iter()
        .filter_map(|s| {
            let list = s["indexes"].as_array()?;
            let rename = s["rename"].as_bool().unwrap_or(false);
            Some((list.first()?.as_str()?.to_string(), list.get(1)?.as_str()?.to_string(), rename))
        })
        .collect();
    for (a, b, rename) in &pairs {
        let needed: &[&String] = if *rename { &[a] } else { &[a, b] };
        for uid in needed {
            if !db.indexes.contains_key(uid.as_str()) {
                return Err(ApiError::new(
                    "index_not_found",
                    format!("Indexes `{uid}` not found."),
                ));
            }
        }
        if *rename && db.indexes.contains_key(b.as_str()) {
            return Err(ApiError::new(
                "index_already_exists",
                format!("Index `{b}` already exists."),
            ));
        }
    }
    for (a, b, rename) in pairs {
        let mut first = db.indexes.remove(&a).expect("checked above");
        if rename {
            first.uid = b.clone();
            db.indexes.insert(b, first);
            continue;
        }
        let mut second = db.indexes.remove(&b).expect("checked above");
        std::mem::swap(&mut first.uid, &mut second.uid);
        db.indexes.insert(b, first);
        db.indexes.insert(a, second);
    }
    Ok(())
}
