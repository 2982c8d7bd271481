//! Parsing a document payload once: a JSON array (or one object), NDJSON, or CSV with typed
//! headers (`name:number`, `name:boolean`, `name:string`, untyped means string).

use serde_json::{Map, Number, Value};

/// A document as received: its fields in the client's order.
pub type Document = Map<String, Value>;

/// A payload format, from the `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: an array of objects, or one object.
    Json,
    /// `application/x-ndjson`: one object per line.
    Ndjson,
    /// `text/csv`: a header line, then one document per line.
    Csv,
}

impl Format {
    /// The format of `content_type`, if it is one Meilisearch accepts for documents.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/json" => Some(Format::Json),
            "application/x-ndjson" => Some(Format::Ndjson),
            "text/csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The name Meilisearch uses in malformed-payload messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ndjson => "ndjson",
            Format::Csv => "csv",
        }
    }
}

/// Why a payload could not be parsed; the message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The `{format}` payload provided is malformed. `{reason}`.")]
pub struct ParseError {
    format: &'static str,
    reason: String,
}

impl ParseError {
    pub(crate) fn new(format: Format, reason: impl Into<String>) -> Self {
        ParseError { format: format.name(), reason: reason.into() }
    }
}

/// Parses `bytes` as `format` into documents.
pub fn parse(bytes: &[u8], format: Format, csv_delimiter: u8) -> Result<Vec<Document>, ParseError> {
    match format {
        Format::Json => parse_json(bytes),
        Format::Ndjson => parse_ndjson(bytes),
        Format::Csv => parse_csv(bytes, csv_delimiter),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Vec<Document>, ParseError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let error = |e: serde_json::Error| ParseError::new(Format::Json, e.to_string());
    match first {
        Some(b'{') => Ok(vec![serde_json::from_slice::<Document>(bytes).map_err(error)?]),
        // As Meilisearch does, whatever follows the closing `]` is ignored.
        Some(b'[') => {
            use serde::Deserialize as _;
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            Vec::<Document>::deserialize(&mut deserializer).map_err(error)
        }
        _ => Err(ParseError::new(Format::Json, "expected a document or an array of documents")),
    }
}

fn parse_ndjson(bytes: &[u8]) -> Result<Vec<Document>, ParseError> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<Document>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ParseError::new(Format::Ndjson, e.to_string()))
}

#[derive(Debug, Clone, Copy)]
enum CsvType {
    String,
    Number,
    Boolean,
}

fn csv_header(raw: &str) -> (String, CsvType) {
    match raw.rsplit_once(':') {
        Some((name, "number")) => (name.to_owned(), CsvType::Number),
        Some((name, "boolean")) => (name.to_owned(), CsvType::Boolean),
        Some((name, "string")) => (name.to_owned(), CsvType::String),
        _ => (raw.to_owned(), CsvType::String),
    }
}

fn parse_csv(bytes: &[u8], delimiter: u8) -> Result<Vec<Document>, ParseError> {
    let error = |reason: String| ParseError::new(Format::Csv, reason);
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(bytes);
    let headers: Vec<(String, CsvType)> =
        reader.headers().map_err(|e| error(e.to_string()))?.iter().map(csv_header).collect();
    let mut documents = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| error(e.to_string()))?;
        let mut document = Document::new();
        for ((name, kind), raw) in headers.iter().zip(record.iter()) {
            let value = csv_value(raw, *kind).map_err(|reason| {
                error(format!("CSV error on line {}, column `{name}`: {reason}", line + 2))
            })?;
            document.insert(name.clone(), value);
        }
        documents.push(document);
    }
    Ok(documents)
}

fn csv_value(raw: &str, kind: CsvType) -> Result<Value, String> {
    let trimmed = raw.trim();
    match kind {
        CsvType::String if raw.is_empty() => Ok(Value::Null),
        CsvType::String => Ok(Value::String(raw.to_owned())),
        _ if trimmed.is_empty() => Ok(Value::Null),
        CsvType::Number => {
            if let Ok(i) = trimmed.parse::<i64>() {
                return Ok(Value::Number(i.into()));
            }
            trimmed
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{raw}` is not a number"))
        }
        CsvType::Boolean => match trimmed {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{raw}` is not a boolean")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_accepts_an_array_or_one_object() {
        let docs = parse(br#"[{"id":1,"b":2},{"id":2}]"#, Format::Json, b',').expect("array");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].keys().collect::<Vec<_>>(), ["id", "b"]);
        assert_eq!(parse(br#"{"id":1}"#, Format::Json, b',').expect("object").len(), 1);
        assert!(parse(b"[{\"id\":1}", Format::Json, b',').is_err());
        assert!(parse(b"[1]", Format::Json, b',').is_err());
        let trailing = parse(b"[{\"id\":1}] trailing", Format::Json, b',').expect("trailing");
        assert_eq!(trailing.len(), 1);
    }

    #[test]
    fn ndjson_reads_one_object_per_line() {
        let docs = parse(b"{\"id\":1}\n\n{\"id\":2}\n", Format::Ndjson, b',').expect("ndjson");
        assert_eq!(docs.len(), 2);
        assert!(parse(b"{\"id\":1}\n{oops\n", Format::Ndjson, b',').is_err());
    }

    #[test]
    fn csv_applies_typed_headers() {
        let docs = parse(
            b"id,title,price:number,ok:boolean,note:string\nc1,one,5,true,\nc2,two,6.5,false,x\n",
            Format::Csv,
            b',',
        )
        .expect("csv");
        assert_eq!(
            Value::Object(docs[0].clone()),
            json!({"id":"c1","title":"one","price":5,"ok":true,"note":null})
        );
        assert_eq!(docs[1]["price"], json!(6.5));
        assert!(parse(b"id,price:number\nc1,abc\n", Format::Csv, b',').is_err());
    }
}
