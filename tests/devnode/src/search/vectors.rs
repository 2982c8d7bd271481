//! User-provided embeddings: the `_vectors` field of documents (checked against the index's
//! embedders), how it is shown with `retrieveVectors`, the `hybrid` search parameter and the
//! semantic score.
//!
//! The semantic score of a document is `(1 + cos) / 2` for the cosine similarity between the
//! query vector and the document's closest embedding, computed in `f32` (fitted on recorded
//! Meilisearch scores: every recorded digit matches).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::index::Document;
use crate::settings::Settings;

/// The reserved field holding a document's embeddings.
pub const VECTORS_FIELD: &str = "_vectors";

/// The number of dimensions of embedder `name`, when the index has it.
pub fn embedder_dimensions(settings: &Settings, name: &str) -> Option<usize> {
    let embedder = settings.embedders.get(name)?;
    Some(embedder.get("dimensions").and_then(Value::as_u64).unwrap_or(0) as usize)
}

/// The embeddings of an `_vectors` entry: one vector, a list of vectors, or
/// `{"embeddings": ..., "regenerate": ...}` around either. `Err` names what is malformed.
fn parse_entry(value: &Value) -> Result<Vec<Vec<f32>>, String> {
    let value = match value {
        Value::Object(obj) => match obj.get("embeddings") {
            Some(inner) => inner,
            None => return Ok(Vec::new()),
        },
        other => other,
    };
    let number = |v: &Value| v.as_f64().map(|f| f as f32);
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) if items.is_empty() => Ok(Vec::new()),
        Value::Array(items) if items.iter().all(Value::is_number) => {
            Ok(vec![items.iter().filter_map(number).collect()])
        }
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(xs) if xs.iter().all(Value::is_number) => {
                    Ok(xs.iter().filter_map(number).collect())
                }
                other => Err(other.to_string()),
            })
            .collect(),
        other => Err(other.to_string()),
    }
}

/// The embeddings `doc` holds for embedder `name` (none when absent or malformed).
pub fn embeddings(doc: &Document, name: &str) -> Vec<Vec<f32>> {
    doc.get(VECTORS_FIELD)
        .and_then(|v| v.get(name))
        .and_then(|entry| parse_entry(entry).ok())
        .unwrap_or_default()
}

/// Check a document's `_vectors` against the index's embedders, as Meilisearch does when it
/// indexes the document: an object, each known embedder's embeddings of its dimensions.
pub fn validate_document(
    index_uid: &str,
    settings: &Settings,
    id: &str,
    doc: &Document,
) -> Result<(), ApiError> {
    let Some(vectors) = doc.get(VECTORS_FIELD) else { return Ok(()) };
    let map = match vectors {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        other => {
            return Err(ApiError::new(
                "invalid_vectors_type",
                format!(
                    "Index `{index_uid}`: The `_vectors` field in the document with id: `{id}` is not an object. Was expecting an object with a key for each embedder with manually provided vectors, but instead got `{other}`"
                ),
            ))
        }
    };
    for (name, entry) in map {
        let Some(expected) = embedder_dimensions(settings, name) else { continue };
        let list = parse_entry(entry).map_err(|found| {
            ApiError::new(
                "invalid_vectors_type",
                format!(
                    "Index `{index_uid}`: Invalid value type at `._vectors.{name}` in the document with id `{id}`: expected an array of floats or an array of arrays of floats, but found `{found}`"
                ),
            )
        })?;
        if let Some((i, bad)) = list.iter().enumerate().find(|(_, e)| e.len() != expected) {
            return Err(ApiError::new(
                "invalid_vector_dimensions",
                format!(
                    "Index `{index_uid}`: Invalid vector dimensions in document with id `{id}` in `._vectors.{name}`.\n  - note: embedding #{i} has dimensions {}\n  - note: embedder `{name}` requires {expected}",
                    bad.len()
                ),
            ));
        }
    }
    Ok(())
}

/// An `f32` as JSON, written as its shortest `f32` text (`0.996`, not `0.99599999`).
fn f32_json(x: f32) -> Value {
    format!("{x}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// `_vectors` as `retrieveVectors` shows it: every embedder of the index with its embeddings and
/// `regenerate: false` (user-provided), other `_vectors` keys as given.
pub fn displayed(settings: &Settings, doc: &Document) -> Value {
    let mut out = Map::new();
    let given = doc.get(VECTORS_FIELD).and_then(Value::as_object);
    if let Some(given) = given {
        for (name, value) in given {
            if !settings.embedders.contains_key(name) {
                out.insert(name.clone(), value.clone());
            }
        }
    }
    for name in settings.embedders.keys() {
        let list: Vec<Value> = embeddings(doc, name)
            .into_iter()
            .map(|e| Value::Array(e.into_iter().map(f32_json).collect()))
            .collect();
        let mut entry = Map::new();
        entry.insert("embeddings".into(), Value::Array(list));
        entry.insert("regenerate".into(), Value::Bool(false));
        out.insert(name.clone(), Value::Object(entry));
    }
    Value::Object(out)
}

/// A document as the documents routes show it: `_vectors` only with `retrieveVectors`.
pub fn document_view(settings: &Settings, doc: &Document, retrieve: bool) -> Document {
    let mut doc_out = doc.clone();
    doc_out.remove(VECTORS_FIELD);
    if retrieve {
        doc_out.insert(VECTORS_FIELD.into(), displayed(settings, doc));
    }
    doc_out
}

/// The semantic score of two vectors: their cosine similarity mapped to `[0, 1]`.
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).fold(0.0f32, |s, (p, q)| s + p * q);
    let norms = dot(a, a).sqrt() * dot(b, b).sqrt();
    if norms == 0.0 {
        return 0.0;
    }
    let cos = dot(a, b) / norms;
    ((1.0 + cos) / 2.0).clamp(0.0, 1.0)
}

/// The best semantic score of `doc`'s embeddings for `name` against `query`, if it has any.
pub fn doc_similarity(doc: &Document, name: &str, query: &[f32]) -> Option<f32> {
    embeddings(doc, name)
        .iter()
        .filter(|e| e.len() == query.len())
        .map(|e| similarity(query, e))
        .fold(None, |best: Option<f32>, s| Some(best.map_or(s, |b| b.max(s))))
}

/// The `hybrid` search parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Hybrid {
    pub embedder: String,
    pub semantic_ratio: f32,
}

fn hybrid_error(code: &str, message: String) -> ApiError {
    ApiError::new(code, message)
}

/// Parse and check `hybrid` against the index's embedders.
pub fn parse_hybrid(value: &Value, settings: &Settings) -> Result<Hybrid, ApiError> {
    let obj = value.as_object().ok_or_else(|| {
        hybrid_error(
            "invalid_search_hybrid_query",
            format!("Invalid value type at `.hybrid`: expected an object, but found `{value}`"),
        )
    })?;
    let mut embedder = None;
    let mut ratio = 0.5f32;
    for (key, v) in obj {
        match key.as_str() {
            "embedder" => {
                embedder = Some(v.as_str().map(String::from).ok_or_else(|| {
                    hybrid_error(
                        "invalid_search_embedder",
                        format!("Invalid value type at `.hybrid.embedder`: expected a string, but found `{v}`"),
                    )
                })?)
            }
            "semanticRatio" => {
                let r = v.as_f64().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| {
                    hybrid_error(
                        "invalid_search_semantic_ratio",
                        "Invalid value at `.hybrid.semanticRatio`: the value of `semanticRatio` is invalid, expected a float between `0.0` and `1.0`.".into(),
                    )
                })?;
                ratio = r as f32;
            }
            other => {
                return Err(hybrid_error(
                    "invalid_search_hybrid_query",
                    format!("Unknown field `{other}` inside `.hybrid`: expected one of `semanticRatio`, `embedder`"),
                ))
            }
        }
    }
    let embedder = embedder.ok_or_else(|| {
        hybrid_error(
            "missing_search_hybrid_embedder",
            "Missing field `embedder` inside `.hybrid`".into(),
        )
    })?;
    check_embedder(settings, &embedder, "invalid_search_embedder")?;
    Ok(Hybrid { embedder, semantic_ratio: ratio })
}

/// Fail with `code` when the index has no embedder `name`.
pub fn check_embedder(settings: &Settings, name: &str, code: &str) -> Result<usize, ApiError> {
    embedder_dimensions(settings, name)
        .ok_or_else(|| ApiError::new(code, format!("Cannot find embedder with name `{name}`.")))
}

/// Fail unless `vector` has the embedder's dimensions.
pub fn check_query_vector(vector: &[f32], dimensions: usize) -> Result<(), ApiError> {
    if vector.len() == dimensions {
        Ok(())
    } else {
        Err(ApiError::new(
            "invalid_vector_dimensions",
            format!(
                "Invalid vector dimensions: expected: `{dimensions}`, found: `{}`.",
                vector.len()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        let mut s = Settings::default();
        s.embedders.insert("default".into(), json!({"source": "userProvided", "dimensions": 3}));
        s
    }

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn similarity_is_cosine_mapped_to_zero_one() {
        assert_eq!(similarity(&[1.0, 0.0], &[2.0, 0.0]), 1.0);
        assert_eq!(similarity(&[1.0, 0.0], &[0.0, 3.0]), 0.5);
        assert_eq!(similarity(&[1.0, 0.0], &[-1.0, 0.0]), 0.0);
        // A recorded Meilisearch score, to the last bit (vectors.jsonl, search.vector, id 37).
        let q = [0.5, -0.2, 0.1, 0.9, -0.7, 0.3, 0.0, -0.4];
        let d = [0.8054, -0.3683, -0.37, 0.8455, -0.5637, 0.9967, 0.7751, -0.7321];
        assert_eq!(f64::from(similarity(&q, &d)), 0.8977775573730469);
        // `similar` to document 7: document 19 (search.similar).
        let seven = [-0.767, -0.1585, -0.5743, -0.4604, 0.9419, 0.6068, -0.3917, 0.7697];
        let nineteen = [-0.3979, 0.3563, -0.5949, -0.6608, 0.8114, 0.32, -0.1161, 0.7835];
        assert_eq!(f64::from(similarity(&seven, &nineteen)), 0.9485041499137878);
    }

    #[test]
    fn vectors_parse_in_every_accepted_shape() {
        let d = doc(json!({"_vectors": {"default": [1, 2, 3]}}));
        assert_eq!(embeddings(&d, "default"), vec![vec![1.0, 2.0, 3.0]]);
        let d = doc(json!({"_vectors": {"default": [[1, 2, 3], [4, 5, 6]]}}));
        assert_eq!(embeddings(&d, "default").len(), 2);
        let d =
            doc(json!({"_vectors": {"default": {"embeddings": [1, 2, 3], "regenerate": false}}}));
        assert_eq!(embeddings(&d, "default"), vec![vec![1.0, 2.0, 3.0]]);
        assert!(embeddings(&d, "other").is_empty());
    }

    #[test]
    fn wrong_dimensions_fail_the_document() {
        let s = settings();
        let ok = doc(json!({"id": 1, "_vectors": {"default": [1, 2, 3]}}));
        assert!(validate_document("i", &s, "1", &ok).is_ok());
        let bad = doc(json!({"id": 1, "_vectors": {"default": [1, 2]}}));
        let err = validate_document("i", &s, "1", &bad).err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("invalid_vector_dimensions"));
        let bad = doc(json!({"id": 1, "_vectors": [1, 2, 3]}));
        let err = validate_document("i", &s, "1", &bad).err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("invalid_vectors_type"));
    }

    #[test]
    fn retrieved_vectors_show_embeddings_and_regenerate() {
        let s = settings();
        let d = doc(json!({"id": 1, "_vectors": {"default": [0.996, 0.5, -0.1]}}));
        assert_eq!(
            displayed(&s, &d),
            json!({"default": {"embeddings": [[0.996, 0.5, -0.1]], "regenerate": false}})
        );
        assert!(!document_view(&s, &d, false).contains_key("_vectors"));
    }

    #[test]
    fn hybrid_needs_a_known_embedder_and_a_ratio_in_range() {
        let s = settings();
        let h = parse_hybrid(&json!({"embedder": "default"}), &s).ok();
        assert_eq!(h.map(|h| h.semantic_ratio), Some(0.5));
        let code = |v: Value| parse_hybrid(&v, &s).err().map(|e| e.code);
        assert_eq!(code(json!({"embedder": "nope"})).as_deref(), Some("invalid_search_embedder"));
        assert_eq!(
            code(json!({"embedder": "default", "semanticRatio": 2})).as_deref(),
            Some("invalid_search_semantic_ratio")
        );
    }
}
