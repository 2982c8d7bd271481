//! Meilisearch's filter grammar: parsing and evaluation against documents.
//!
//! [`parse_filter`] reads the `filter` parameter in its string and array forms. The parser tries
//! the same alternatives in the same order as Meilisearch's `filter-parser` crate, so malformed
//! filters fail on the same inputs with the same messages (position suffix included).
//! [`Filter::check_filterable`] applies an index's filterable attribute patterns, and
//! [`Filter::matches`] evaluates a filter against one document with Meilisearch's facet
//! semantics: normalized strings, JSON numbers, arrays, nested fields and `_geo` points.

mod escape;
mod eval;
mod geo;
mod parse;
mod syntax;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use geo::haversine_meters;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every sub-filter matches.
    And(Vec<Filter>),
    /// At least one sub-filter matches.
    Or(Vec<Filter>),
    /// The sub-filter does not match (the complement over all documents).
    Not(Box<Filter>),
    /// A condition on one attribute.
    Condition {
        /// The attribute the condition reads.
        attribute: Attribute,
        /// The operator and its operands.
        op: Op,
    },
    /// `attribute IN [values]`: the attribute equals one of the values.
    In {
        /// The attribute the condition reads.
        attribute: Attribute,
        /// The values, compared as `=` does.
        values: Vec<String>,
    },
    /// `_geoRadius(lat, lng, radius)`: the document's `_geo` lies within `radius` meters.
    GeoRadius {
        /// Latitude of the center, in degrees.
        lat: f64,
        /// Longitude of the center, in degrees.
        lng: f64,
        /// Radius in meters.
        radius: f64,
        /// Position of the latitude in the filter text.
        location: Location,
    },
    /// `_geoBoundingBox([top, right], [bottom, left])`: the document's `_geo` lies in the box,
    /// which crosses the antimeridian when `left > right`.
    GeoBoundingBox {
        /// `[latitude, longitude]` of the top-right corner.
        top_right: [f64; 2],
        /// `[latitude, longitude]` of the bottom-left corner.
        bottom_left: [f64; 2],
        /// Position of the first latitude in the filter text.
        location: Location,
    },
}

/// The operator of a [`Filter::Condition`], with its operands as written in the filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `=`
    Equal(String),
    /// `!=`
    NotEqual(String),
    /// `>`
    GreaterThan(String),
    /// `>=`
    GreaterThanOrEqual(String),
    /// `<`
    LowerThan(String),
    /// `<=`
    LowerThanOrEqual(String),
    /// `from TO to`, both bounds included.
    Between {
        /// Lower bound.
        from: String,
        /// Upper bound.
        to: String,
    },
    /// `EXISTS`
    Exists,
    /// `IS NULL`
    Null,
    /// `IS EMPTY`
    Empty,
    /// `STARTS WITH`
    StartsWith(String),
}

/// An attribute name read by a condition, with its position in the filter text.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The attribute name, unquoted and unescaped; dots reach into nested objects.
    pub name: String,
    /// Where the name sits in the filter text.
    pub location: Location,
}

/// Where a token sits in the filter text, rendered as Meilisearch appends it to its messages:
/// first and past-the-end 1-based columns, then the whole filter (`2:7 "title" = "x"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    start: usize,
    end: usize,
    source: Arc<str>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} {}", self.start, self.end, self.source)
    }
}

/// A parse or check failure; `message` is Meilisearch's message text (the caller picks the error
/// code, `invalid_search_filter` or `invalid_document_filter`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// The message, in Meilisearch's words.
    pub message: String,
}

/// Parse the `filter` search parameter: a string, or the array form (array of strings and/or
/// arrays of strings: outer elements are ANDed, inner arrays are ORed), or null. `Ok(None)` for
/// null / empty string / empty array.
pub fn parse_filter(value: &Value) -> Result<Option<Filter>, FilterError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => parse::parse_str(text),
        Value::Array(items) => parse_array(items),
        other => Err(invalid_expression("String, Array", other)),
    }
}

/// The array form; its shape is checked before any string is parsed, as Meilisearch does.
fn parse_array(items: &[Value]) -> Result<Option<Filter>, FilterError> {
    for item in items {
        match item {
            Value::String(_) => {}
            Value::Array(inner) => {
                if let Some(other) = inner.iter().find(|value| !value.is_string()) {
                    return Err(invalid_expression("String", other));
                }
            }
            other => return Err(invalid_expression("String, [String]", other)),
        }
    }
    let mut ands = Vec::new();
    for item in items {
        match item {
            Value::Array(inner) => {
                let mut ors = Vec::new();
                for text in inner.iter().filter_map(Value::as_str) {
                    ors.extend(parse::parse_str(text)?);
                }
                match ors.len() {
                    0 => {}
                    1 => ands.extend(ors),
                    _ => ands.push(Filter::Or(ors)),
                }
            }
            other => {
                if let Some(text) = other.as_str() {
                    ands.extend(parse::parse_str(text)?);
                }
            }
        }
    }
    Ok(match ands.len() {
        0 => None,
        1 => ands.pop(),
        _ => Some(Filter::And(ands)),
    })
}

fn invalid_expression(expected: &str, found: &Value) -> FilterError {
    FilterError {
        message: format!(
            "Invalid syntax for the filter parameter: `expected {expected}, found: {found}`."
        ),
    }
}

impl Filter {
    /// Every attribute name the filter reads (e.g. "brand", "price", "_geo"), each once, in order.
    pub fn attributes(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for leaf in self.leaves() {
            let name = match leaf {
                Filter::Condition { attribute, .. } | Filter::In { attribute, .. } => {
                    attribute.name.as_str()
                }
                _ => "_geo",
            };
            if !names.iter().any(|known| known == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// Check every attribute against the index's filterable attribute patterns, in the order
    /// Meilisearch does (conditions first, then the geo rules, which need `_geo` filterable). The
    /// message starts with "Index `uid`: " unless `index_uid` is empty (the form Meilisearch's
    /// `GET /documents` route uses).
    pub fn check_filterable(
        &self,
        index_uid: &str,
        filterable_patterns: &[String],
    ) -> Result<(), FilterError> {
        let leaves = self.leaves();
        for leaf in &leaves {
            if let Filter::Condition { attribute, .. } | Filter::In { attribute, .. } = leaf {
                if !is_filterable(&attribute.name, filterable_patterns) {
                    let (name, at) = (&attribute.name, &attribute.location);
                    return Err(not_filterable(index_uid, name, at, filterable_patterns));
                }
            }
        }
        for leaf in &leaves {
            if let Filter::GeoRadius { location, .. } | Filter::GeoBoundingBox { location, .. } =
                leaf
            {
                if !is_filterable("_geo", filterable_patterns) {
                    return Err(not_filterable(index_uid, "_geo", location, filterable_patterns));
                }
            }
        }
        Ok(())
    }

    /// The conditions and geo rules, in tree order.
    fn leaves(&self) -> Vec<&Filter> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(filter) = stack.pop() {
            match filter {
                Filter::And(items) | Filter::Or(items) => stack.extend(items.iter().rev()),
                Filter::Not(inner) => stack.push(inner),
                leaf => out.push(leaf),
            }
        }
        out
    }

    /// `NOT self`, folding a double negation as Meilisearch's parser does.
    fn negate(self) -> Filter {
        match self {
            Filter::Not(inner) => *inner,
            other => Filter::Not(Box::new(other)),
        }
    }
}

/// Whether `attribute` is filterable under one of `patterns`: `*`, a `prefix*`, `*suffix` or
/// `*infix*` wildcard, or an exact name, which also covers the fields nested under it.
fn is_filterable(attribute: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|pattern| {
        if pattern == "*" {
            true
        } else if pattern.len() > 1 && pattern.starts_with('*') && pattern.ends_with('*') {
            attribute.contains(&pattern[1..pattern.len() - 1])
        } else if let Some(suffix) = pattern.strip_prefix('*') {
            attribute.ends_with(suffix)
        } else if let Some(prefix) = pattern.strip_suffix('*') {
            attribute.starts_with(prefix)
        } else {
            attribute == pattern
                || attribute
                    .strip_prefix(pattern.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        }
    })
}

fn not_filterable(
    index_uid: &str,
    attribute: &str,
    location: &Location,
    patterns: &[String],
) -> FilterError {
    let prefix =
        if index_uid.is_empty() { String::new() } else { format!("Index `{index_uid}`: ") };
    let mut sorted: Vec<&str> = patterns.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let available = if sorted.is_empty() {
        "This index does not have configured filterable attributes.".to_string()
    } else {
        format!("Available filterable attribute patterns are: `{}`.", sorted.join("`, `"))
    };
    FilterError {
        message: format!(
            "{prefix}Attribute `{attribute}` is not filterable. {available}\n{location}"
        ),
    }
}

/// Renders the tree like Meilisearch's `FilterCondition` does (`AND[{a} = {1}, {b} EXISTS, ]`).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Not(inner) => write!(f, "NOT ({inner})"),
            Filter::Condition { attribute, op } => write!(f, "{{{}}} {op}", attribute.name),
            Filter::In { attribute, values } => {
                write!(f, "{{{}}} IN[", attribute.name)?;
                values.iter().try_for_each(|value| write!(f, "{{{value}}}, "))?;
                write!(f, "]")
            }
            Filter::Or(items) | Filter::And(items) => {
                write!(f, "{}[", if matches!(self, Filter::Or(_)) { "OR" } else { "AND" })?;
                items.iter().try_for_each(|item| write!(f, "{item}, "))?;
                write!(f, "]")
            }
            Filter::GeoRadius { lat, lng, radius, .. } => {
                write!(f, "_geoRadius({{{lat}}}, {{{lng}}}, {{{radius}}})")
            }
            Filter::GeoBoundingBox {
                top_right: [top, right], bottom_left: [bottom, left], ..
            } => {
                write!(f, "_geoBoundingBox([{{{top}}}, {{{right}}}], [{{{bottom}}}, {{{left}}}])")
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Equal(value) => write!(f, "= {{{value}}}"),
            Op::NotEqual(value) => write!(f, "!= {{{value}}}"),
            Op::GreaterThan(value) => write!(f, "> {{{value}}}"),
            Op::GreaterThanOrEqual(value) => write!(f, ">= {{{value}}}"),
            Op::LowerThan(value) => write!(f, "< {{{value}}}"),
            Op::LowerThanOrEqual(value) => write!(f, "<= {{{value}}}"),
            Op::Between { from, to } => write!(f, "{{{from}}} TO {{{to}}}"),
            Op::Exists => write!(f, "EXISTS"),
            Op::Null => write!(f, "IS NULL"),
            Op::Empty => write!(f, "IS EMPTY"),
            Op::StartsWith(value) => write!(f, "STARTS WITH {{{value}}}"),
        }
    }
}
