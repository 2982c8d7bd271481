//! Editing documents by a Rhai function (`POST /indexes/{uid}/documents/edit`, experimental
//! feature `editDocumentsByFunction`).
//!
//! As Meilisearch documents it: the function runs once per document the filter matches (every
//! document without a filter) with `doc` (the document as a map) and `context` (the request's
//! `context`, `()` when absent) in scope. Whatever `doc` holds afterwards replaces the
//! document; `doc = ()` deletes it. A document whose primary key the function changed or
//! removed fails the whole task, and so does a function that does not compile or fails while it
//! runs: nothing is applied then. `editedDocuments` counts the documents that changed,
//! `deletedDocuments` those deleted.

use rhai::{Dynamic, Engine, Scope};
use serde_json::{Map, Value};

use crate::documents::document_id;
use crate::error::ApiError;
use crate::index::{Document, Index};

/// The operations one run of the function may take: a loop cannot hang the node.
const MAX_OPERATIONS: u64 = 1_000_000;

/// The code of every error the function causes.
const CODE: &str = "edit_documents_by_function_error";

/// What an edit did: the documents changed and deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Edited {
    pub edited: usize,
    pub deleted: usize,
}

fn engine() -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_expr_depths(64, 64);
    engine.set_max_string_size(10 << 20);
    engine.set_max_array_size(100_000);
    engine.set_max_map_size(100_000);
    engine
}

/// Run `function` over the documents of `index` that `matches`, applying the result only when
/// every document went through.
pub fn edit_documents(
    index: &mut Index,
    function: &str,
    context: Option<&Value>,
    matches: impl Fn(&Document) -> bool,
) -> Result<Edited, ApiError> {
    let engine = engine();
    let ast = engine
        .compile(function)
        .map_err(|e| ApiError::new(CODE, format!("Error while compiling the function: {e}")))?;
    let context = match context {
        Some(value) => to_dynamic(value)?,
        None => Dynamic::UNIT,
    };
    let primary_key = index.primary_key.clone();
    let mut changes: Vec<(String, Option<Document>)> = Vec::new();
    for (id, doc) in index.documents.iter().filter(|(_, doc)| matches(doc)) {
        let mut scope = Scope::new();
        scope.push("doc", to_dynamic(&Value::Object(doc.clone()))?);
        scope.push_constant("context", context.clone());
        engine
            .run_ast_with_scope(&mut scope, &ast)
            .map_err(|e| ApiError::new(CODE, format!("Error while running the function: {e}")))?;
        let after = scope.get_value::<Dynamic>("doc").unwrap_or(Dynamic::UNIT);
        if after.is_unit() {
            changes.push((id.clone(), None));
            continue;
        }
        let Value::Object(new) = rhai::serde::from_dynamic::<Value>(&after)
            .map_err(|e| ApiError::new(CODE, format!("Error while running the function: {e}")))?
        else {
            return Err(ApiError::new(
                CODE,
                format!(
                    "Error while running the function: `doc` must be an object or `()`, but \
                     the function left `{}` in it.",
                    after.type_name()
                ),
            ));
        };
        if let Some(pk) = &primary_key {
            let same = document_id(&new, pk).ok().as_deref() == Some(id.as_str());
            if !same {
                return Err(ApiError::new(
                    CODE,
                    format!(
                        "The function changed or removed the primary key `{pk}` of the document \
                         `{id}`: editing a document must keep its primary key."
                    ),
                ));
            }
        }
        if &new != doc {
            changes.push((id.clone(), Some(in_field_order(doc, new))));
        }
    }
    let mut done = Edited::default();
    for (id, change) in changes {
        match change {
            None => {
                index.documents.shift_remove(&id);
                done.deleted += 1;
            }
            Some(new) => {
                index.note_fields(&new);
                index.documents.insert(id, new);
                done.edited += 1;
            }
        }
    }
    Ok(done)
}

fn to_dynamic(value: &Value) -> Result<Dynamic, ApiError> {
    rhai::serde::to_dynamic(value).map_err(|e| ApiError::internal(e.to_string()))
}

/// The edited document with the fields it kept in their old order, then the new ones (a Rhai
/// map is sorted by name).
fn in_field_order(old: &Document, mut new: Document) -> Document {
    let mut out = Map::with_capacity(new.len());
    for key in old.keys() {
        if let Some(value) = new.shift_remove(key) {
            out.insert(key.clone(), value);
        }
    }
    out.extend(new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::OffsetDateTime;

    fn index(docs: Value) -> Index {
        let mut index = Index::new("m", Some("id".into()), OffsetDateTime::now_utc());
        for doc in docs.as_array().unwrap() {
            let doc = doc.as_object().unwrap().clone();
            index.documents.insert(document_id(&doc, "id").unwrap(), doc);
        }
        index
    }

    fn docs(index: &Index) -> Value {
        Value::Array(index.documents.values().cloned().map(Value::Object).collect())
    }

    #[test]
    fn edits_deletes_and_counts_changes_only() {
        let mut idx = index(json!([{"id": 1, "t": "a"}, {"id": 2, "t": "b"}, {"id": 3, "t": "c"}]));
        let done = edit_documents(
            &mut idx,
            "if doc.id == 3 { doc = () } else if doc.id == 1 { doc.t = doc.t.to_upper() + context.s }",
            Some(&json!({"s": "!"})),
            |_| true,
        )
        .unwrap();
        assert_eq!(done, Edited { edited: 1, deleted: 1 });
        assert_eq!(docs(&idx), json!([{"id": 1, "t": "A!"}, {"id": 2, "t": "b"}]));
    }

    #[test]
    fn a_whole_new_doc_keeps_the_old_field_order() {
        let mut idx = index(json!([{"id": 1, "z": 1, "a": 2}]));
        edit_documents(&mut idx, "doc = #{ n: 0, a: 3, id: doc.id, z: 5 }", None, |_| true)
            .unwrap();
        assert_eq!(docs(&idx), json!([{"id": 1, "z": 5, "a": 3, "n": 0}]));
        let keys: Vec<&String> = idx.documents["1"].keys().collect();
        assert_eq!(keys, ["id", "z", "a", "n"]);
    }

    #[test]
    fn a_changed_primary_key_or_a_failure_applies_nothing() {
        let before = json!([{"id": 1, "t": "a"}, {"id": 2, "t": "b"}]);
        for function in ["doc.t = \"x\"; if doc.id == 2 { doc.id = 9 }", "doc.remove(\"id\")"] {
            let mut idx = index(before.clone());
            let err = edit_documents(&mut idx, function, None, |_| true).unwrap_err();
            assert_eq!(err.code, CODE, "{function}");
            assert_eq!(docs(&idx), before, "{function}");
        }
        let mut idx = index(before.clone());
        let err = edit_documents(&mut idx, "doc.t = ", None, |_| true).unwrap_err();
        assert!(err.message.starts_with("Error while compiling the function"), "{err}");
        let err = edit_documents(&mut idx, "loop { }", None, |_| true).unwrap_err();
        assert!(err.message.starts_with("Error while running the function"), "{err}");
        let err = edit_documents(&mut idx, "doc = 5", None, |_| true).unwrap_err();
        assert_eq!(err.code, CODE);
        assert_eq!(docs(&idx), before);
    }

    #[test]
    fn only_matching_documents_are_edited() {
        let mut idx = index(json!([{"id": 1, "t": "a"}, {"id": 2, "t": "b"}]));
        let done =
            edit_documents(&mut idx, "doc.t = \"x\"", None, |d| d["id"] == json!(2)).unwrap();
        assert_eq!(done, Edited { edited: 1, deleted: 0 });
        assert_eq!(docs(&idx), json!([{"id": 1, "t": "a"}, {"id": 2, "t": "x"}]));
    }
}
