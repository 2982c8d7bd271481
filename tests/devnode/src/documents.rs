//! Document payloads: parsing JSON arrays, NDJSON and CSV, resolving the primary key the way
//! Meilisearch does, and validating document ids.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::index::Document;

/// The payload formats Meilisearch accepts for documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    Json,
    Ndjson,
    Csv,
}

impl PayloadFormat {
    /// The format for a `Content-Type` header, or the 415 error Meilisearch answers.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        const ACCEPTED: &str = "Accepted values for the Content-Type header are: `application/json`, `application/x-ndjson`, `text/csv`";
        let Some(raw) = content_type else {
            return Err(ApiError::new(
                "missing_content_type",
                format!("A Content-Type header is missing. {ACCEPTED}"),
            ));
        };
        let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Ok(Self::Json),
            "application/x-ndjson" => Ok(Self::Ndjson),
            "text/csv" => Ok(Self::Csv),
            _ => Err(ApiError::new(
                "invalid_content_type",
                format!("The Content-Type `{raw}` is invalid. {ACCEPTED}"),
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }
}

fn malformed(format: PayloadFormat, detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        "malformed_payload",
        format!("The `{}` payload provided is malformed. `{detail}`.", format.name()),
    )
}

/// Parse a documents payload into objects. An empty payload is `missing_payload`.
pub fn parse_payload(
    bytes: &[u8],
    format: PayloadFormat,
    csv_delimiter: u8,
) -> Result<Vec<Document>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            "missing_payload",
            format!("A {} payload is missing.", format.name()),
        ));
    }
    match format {
        PayloadFormat::Json => parse_json(bytes),
        PayloadFormat::Ndjson => parse_ndjson(bytes),
        PayloadFormat::Csv => parse_csv(bytes, csv_delimiter),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Vec<Document>, ApiError> {
    let array = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let value: Value = if array {
        // Meilisearch ignores whatever follows the closing `]` of a document array.
        use serde::Deserialize as _;
        Value::deserialize(&mut serde_json::Deserializer::from_slice(bytes))
    } else {
        serde_json::from_slice(bytes)
    }
    .map_err(|e| malformed(PayloadFormat::Json, e))?;
    match value {
        Value::Object(doc) => Ok(vec![doc]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(doc) => Ok(doc),
                other => Err(malformed(
                    PayloadFormat::Json,
                    format!(
                        "Couldn't serialize document value: invalid type: {}, expected a map",
                        kind(&other)
                    ),
                )),
            })
            .collect(),
        other => Err(malformed(
            PayloadFormat::Json,
            format!(
                "Couldn't serialize document value: invalid type: {}, expected a sequence",
                kind(&other)
            ),
        )),
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

fn parse_ndjson(bytes: &[u8]) -> Result<Vec<Document>, ApiError> {
    let mut docs = Vec::new();
    for item in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        match item.map_err(|e| malformed(PayloadFormat::Ndjson, e))? {
            Value::Object(doc) => docs.push(doc),
            other => {
                return Err(malformed(
                    PayloadFormat::Ndjson,
                    format!("invalid type: {}, expected a map", kind(&other)),
                ))
            }
        }
    }
    Ok(docs)
}

/// CSV columns may carry a type: `name:string` (default), `name:number`, `name:boolean`.
fn parse_csv(bytes: &[u8], delimiter: u8) -> Result<Vec<Document>, ApiError> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).from_reader(bytes);
    let headers: Vec<(String, &'static str)> = reader
        .headers()
        .map_err(|e| malformed(PayloadFormat::Csv, e))?
        .iter()
        .map(|h| match h.rsplit_once(':') {
            Some((name, "number")) => (name.to_string(), "number"),
            Some((name, "boolean")) => (name.to_string(), "boolean"),
            Some((name, "string")) => (name.to_string(), "string"),
            _ => (h.to_string(), "string"),
        })
        .collect();
    let mut docs = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| malformed(PayloadFormat::Csv, e))?;
        let mut doc = Map::new();
        for ((name, ty), field) in headers.iter().zip(record.iter()) {
            let value = match *ty {
                _ if field.is_empty() && *ty != "string" => Value::Null,
                "number" => parse_csv_number(field).ok_or_else(|| {
                    malformed(
                        PayloadFormat::Csv,
                        format!("Error parsing number {field:?} at line {}", line + 1),
                    )
                })?,
                "boolean" => match field.trim() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(malformed(
                            PayloadFormat::Csv,
                            format!("Error parsing boolean {field:?} at line {}", line + 1),
                        ))
                    }
                },
                _ if field.is_empty() => Value::Null,
                _ => Value::String(field.to_string()),
            };
            doc.insert(name.clone(), value);
        }
        docs.push(doc);
    }
    Ok(docs)
}

fn parse_csv_number(field: &str) -> Option<Value> {
    let field = field.trim();
    if let Ok(i) = field.parse::<i64>() {
        return Some(Value::from(i));
    }
    field.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)
}

/// Infer the primary key from the first document: the single field whose name ends with `id`.
pub fn infer_primary_key(first: Option<&Document>) -> Result<String, ApiError> {
    let candidates: Vec<&String> = first
        .map(|doc| doc.keys().filter(|k| k.to_lowercase().ends_with("id")).collect())
        .unwrap_or_default();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::new(
            "index_primary_key_no_candidate_found",
            "The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter.",
        )),
        many => {
            let names: Vec<String> = many.iter().map(|k| format!("'{k}'")).collect();
            let listed = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} and {last}", rest.join(", "))
                }
                _ => names.join(", "),
            };
            Err(ApiError::new(
                "index_primary_key_multiple_candidates_found",
                format!("The primary key inference failed as the engine found {} fields ending with `id` in their names: {listed}. Please specify the primary key manually using the `primaryKey` query parameter.", many.len()),
            ))
        }
    }
}

/// The document's id as a string, validated as Meilisearch validates it.
pub fn document_id(doc: &Document, primary_key: &str) -> Result<String, ApiError> {
    let value = lookup(doc, primary_key).ok_or_else(|| {
        ApiError::new(
            "missing_document_id",
            format!(
                "Document doesn't have a `{primary_key}` attribute: `{}`.",
                Value::Object(doc.clone())
            ),
        )
    })?;
    validate_id_value(value)
}

/// A primary key value (string or integer) as the document id string.
pub fn validate_id_value(value: &Value) -> Result<String, ApiError> {
    match value {
        Value::String(s) if is_valid_id(s) => Ok(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(ApiError::new(
            "invalid_document_id",
            format!("Document identifier `{other}` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes."),
        )),
    }
}

/// Whether a string is a valid document id.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 511
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A field by name, with `a.b` reaching into nested objects.
fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    match doc.get(head)? {
        Value::Object(inner) => lookup(inner, rest),
        _ => None,
    }
}

/// Keep only `fields` of a document (`*` keeps all), in the document's own field order.
pub fn select_fields(doc: &Document, fields: Option<&[String]>) -> Document {
    match fields {
        None => doc.clone(),
        Some(list) if list.iter().any(|f| f == "*") => doc.clone(),
        Some(list) => doc
            .iter()
            .filter(|(k, _)| list.iter().any(|f| f == *k || k.starts_with(&format!("{f}."))))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Document {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn parses_the_three_formats() {
        let json = parse_payload(br#"[{"id":1},{"id":"b"}]"#, PayloadFormat::Json, b',').unwrap();
        assert_eq!(json.len(), 2);
        let nd = parse_payload(b"{\"id\":1}\n{\"id\":2}\n", PayloadFormat::Ndjson, b',').unwrap();
        assert_eq!(nd[1]["id"], 2);
        let csv = parse_payload(
            b"id,title,price:number,ok:boolean\nc1,csv one,5,true\n",
            PayloadFormat::Csv,
            b',',
        )
        .unwrap();
        assert_eq!(
            Value::Object(csv[0].clone()),
            json!({"id":"c1","title":"csv one","price":5,"ok":true})
        );
    }

    #[test]
    fn malformed_and_missing_payloads_are_rejected() {
        let err = parse_payload(b"[{\"id\":1}", PayloadFormat::Json, b',').unwrap_err();
        assert_eq!(err.code, "malformed_payload");
        let err = parse_payload(b"[1]", PayloadFormat::Json, b',').unwrap_err();
        assert_eq!(err.code, "malformed_payload");
        let trailing = parse_payload(b"[{\"id\":1}] trailing", PayloadFormat::Json, b',');
        assert_eq!(trailing.expect("bytes after an array are ignored").len(), 1);
        let err = parse_payload(b"  ", PayloadFormat::Json, b',').unwrap_err();
        assert_eq!(err.code, "missing_payload");
        let err = parse_payload(b"id,n:number\na,xx\n", PayloadFormat::Csv, b',').unwrap_err();
        assert_eq!(err.code, "malformed_payload");
    }

    #[test]
    fn content_types_map_to_formats_or_415() {
        assert_eq!(
            PayloadFormat::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            PayloadFormat::Json
        );
        let err = PayloadFormat::from_content_type(Some("text/plain")).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code.as_str()), (415, "invalid_content_type"));
        let err = PayloadFormat::from_content_type(None).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code.as_str()), (415, "missing_content_type"));
    }

    #[test]
    fn primary_key_inference_follows_meilisearch() {
        assert_eq!(infer_primary_key(Some(&obj(json!({"sku_id":"a","t":1})))).unwrap(), "sku_id");
        let err = infer_primary_key(Some(&obj(json!({"id":1,"product_id":2})))).unwrap_err();
        assert_eq!(err.code, "index_primary_key_multiple_candidates_found");
        assert_eq!(err.message, "The primary key inference failed as the engine found 2 fields ending with `id` in their names: 'id' and 'product_id'. Please specify the primary key manually using the `primaryKey` query parameter.");
        let err = infer_primary_key(Some(&obj(json!({"title":"x"})))).unwrap_err();
        assert_eq!(err.code, "index_primary_key_no_candidate_found");
    }

    #[test]
    fn document_ids_are_validated() {
        assert_eq!(document_id(&obj(json!({"id": 7})), "id").unwrap(), "7");
        assert_eq!(document_id(&obj(json!({"id": "a-B_9"})), "id").unwrap(), "a-B_9");
        let err = document_id(&obj(json!({"id": "has space"})), "id").unwrap_err();
        assert_eq!(err.code, "invalid_document_id");
        assert!(err.message.starts_with("Document identifier `\"has space\"` is invalid."));
        assert_eq!(
            document_id(&obj(json!({"id": 1.5})), "id").unwrap_err().code,
            "invalid_document_id"
        );
        let err = document_id(&obj(json!({"title": "no id"})), "id").unwrap_err();
        assert_eq!(err.code, "missing_document_id");
        assert_eq!(err.message, "Document doesn't have a `id` attribute: `{\"title\":\"no id\"}`.");
        assert_eq!(document_id(&obj(json!({"a": {"b": "x"}})), "a.b").unwrap(), "x");
    }

    #[test]
    fn select_fields_keeps_listed_fields() {
        let doc = obj(json!({"id":"1","title":"t","price":3,"geo":{"lat":1}}));
        let picked = select_fields(&doc, Some(&["id".into(), "price".into()]));
        assert_eq!(Value::Object(picked), json!({"id":"1","price":3}));
        assert_eq!(select_fields(&doc, Some(&["*".into()])).len(), 4);
    }
}
