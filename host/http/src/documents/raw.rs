//! Documents of a JSON or NDJSON payload found in its bytes and read without building them in
//! memory: where each document is, its reserved fields, and its primary key value. A large
//! write then costs little more memory than its body (the batches sent to nodes are slices of
//! it, see [`crate::documents::batch::route`]).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::bookkeeping::RESERVED_PREFIX;
use crate::documents::parse::{self, Document, Format, ParseError};

/// Where each document of `body` (a JSON array or object, or NDJSON) is, as byte ranges of its
/// objects. A payload that is not valid or holds something else than objects gets the error
/// [`parse::parse`] gives it, so the message is the one clients always got.
pub fn locate(body: &[u8], format: Format) -> Result<Vec<Range<usize>>, ParseError> {
    let found = match format {
        Format::Json => locate_json(body),
        Format::Ndjson => locate_ndjson(body),
        Format::Csv => None,
    };
    found.ok_or_else(|| match parse::parse(body, format, b',') {
        Err(error) => error,
        Ok(_) => ParseError::new(format, "expected a document or an array of documents"),
    })
}

fn locate_json(body: &[u8]) -> Option<Vec<Range<usize>>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    let raws: Vec<&RawValue> = match first {
        b'{' => vec![serde_json::from_slice::<&RawValue>(body).ok()?],
        // As Meilisearch does, whatever follows the closing `]` is ignored.
        b'[' => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            Vec::<&RawValue>::deserialize(&mut deserializer).ok()?
        }
        _ => return None,
    };
    ranges(body, &raws)
}

fn locate_ndjson(body: &[u8]) -> Option<Vec<Range<usize>>> {
    let raws = serde_json::Deserializer::from_slice(body)
        .into_iter::<&RawValue>()
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    ranges(body, &raws)
}

/// The ranges of `raws` (slices of `body`), each an object.
fn ranges(body: &[u8], raws: &[&RawValue]) -> Option<Vec<Range<usize>>> {
    let base = body.as_ptr() as usize;
    raws.iter()
        .map(|raw| {
            let text = raw.get();
            let start = (text.as_ptr() as usize).checked_sub(base)?;
            (text.starts_with('{') && start + text.len() <= body.len())
                .then_some(start..start + text.len())
        })
        .collect()
}

/// What [`scan`] found in one document.
#[derive(Debug, Default, PartialEq)]
pub struct Scanned {
    /// The value of the primary key, when asked for and present.
    pub id: Option<Value>,
    /// The first reserved (`_miroir_*`) field.
    pub reserved: Option<String>,
}

/// Reads the object `text` once: its first reserved field and the value of `primary_key`.
pub fn scan(text: &[u8], primary_key: Option<&str>) -> Result<Scanned, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    Scan { primary_key }.deserialize(&mut deserializer)
}

/// The whole document `text`, for an error message that shows it.
pub fn document(text: &[u8]) -> Document {
    serde_json::from_slice(text).unwrap_or_default()
}

struct Scan<'k> {
    primary_key: Option<&'k str>,
}

impl<'de> DeserializeSeed<'de> for Scan<'_> {
    type Value = Scanned;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scanned, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_> {
    type Value = Scanned;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        let mut scanned = Scanned::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if scanned.reserved.is_none() && key.starts_with(RESERVED_PREFIX) {
                scanned.reserved = Some(key.clone().into_owned());
            }
            if self.primary_key == Some(key.as_ref()) {
                scanned.id = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(scanned)
    }
}

/// A field name, borrowed from the payload unless it holds escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a field name")
            }

            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(value)))
            }

            fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value.to_owned())))
            }

            fn visit_string<E>(self, value: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn texts<'a>(body: &'a [u8], ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| std::str::from_utf8(&body[r.clone()]).expect("utf-8")).collect()
    }

    #[test]
    fn documents_are_found_in_arrays_objects_and_ndjson() {
        let body = br#" [ {"id":1,"b":[1,{"c":2}]} ,{"id":"x"}] trailing"#;
        let found = locate(body, Format::Json).expect("array");
        assert_eq!(texts(body, &found), [r#"{"id":1,"b":[1,{"c":2}]}"#, r#"{"id":"x"}"#]);
        let body = br#"  {"id":1}  "#;
        assert_eq!(texts(body, &locate(body, Format::Json).expect("object")), [r#"{"id":1}"#]);
        let body = b"{\"id\":1}\n\n{\"id\":2}\n";
        assert_eq!(
            texts(body, &locate(body, Format::Ndjson).expect("ndjson")),
            ["{\"id\":1}", "{\"id\":2}"]
        );
    }

    #[test]
    fn bad_payloads_get_the_parsers_messages() {
        for (body, format) in [
            (&b"[{\"id\":1}"[..], Format::Json),
            (b"[1]", Format::Json),
            (b"\"text\"", Format::Json),
            (b"{\"id\":1}\n{oops\n", Format::Ndjson),
            (b"{\"id\":1}\n[2]\n", Format::Ndjson),
        ] {
            let expected = parse::parse(body, format, b',').expect_err("refused by the parser");
            assert_eq!(locate(body, format).expect_err("refused"), expected);
        }
    }

    #[test]
    fn a_scan_finds_the_key_and_reserved_fields_escapes_included() {
        let text = br#"{"title":"a","sku":{"n":1},"_miroir_x":1,"_miroir_y":2}"#;
        let scanned = scan(text, Some("sku")).expect("scan");
        assert_eq!(scanned.id, Some(json!({"n": 1})));
        assert_eq!(scanned.reserved.as_deref(), Some("_miroir_x"));
        let escaped = br#"{"\u0069d":"p1"}"#;
        assert_eq!(scan(escaped, Some("id")).expect("scan").id, Some(json!("p1")));
        assert_eq!(scan(br#"{"a":1}"#, Some("id")).expect("scan"), Scanned::default());
    }
}
