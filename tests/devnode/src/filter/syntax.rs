//! The lexical layer of the filter parser: its error model, whitespace, words, quoted values,
//! escape sequences, and Meilisearch's message texts.
//!
//! Errors follow the `nom` model Meilisearch's parser is built on: a recoverable
//! [`PErr::Error`] lets the next alternative be tried, a [`PErr::Failure`] stops parsing.
//! Positions are byte offsets into the filter text.

use std::sync::Arc;

use super::escape::{unescape, Unescape};
use super::{FilterError, Location};

/// Words that must be quoted to be used as attribute names or values.
const KEYWORDS: [&str; 14] = [
    "AND",
    "OR",
    "IN",
    "NOT",
    "TO",
    "EXISTS",
    "IS",
    "NULL",
    "EMPTY",
    "CONTAINS",
    "STARTS",
    "WITH",
    "_geoRadius",
    "_geoBoundingBox",
];

/// What went wrong; [`Cursor::error`] renders it in Meilisearch's words.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    ExpectedValue {
        keyword: bool,
    },
    /// A bare word that is a keyword (becomes `ExpectedValue`).
    ReservedKeyword,
    MalformedValue,
    InvalidEscapedNumber,
    MissingClosingDelimiter(char),
    /// A closing quote was not found (becomes `MissingClosingDelimiter`).
    Char(char),
    InvalidPrimary,
    ExpectedEof,
    InOpeningBracket,
    InClosingBracket,
    InExpectedValue,
    GeoRadius,
    GeoBoundingBox,
    ReservedGeo(&'static str),
    MisusedGeoRadius,
    MisusedGeoBoundingBox,
    DepthLimitReached,
    /// A message of its own (bad coordinates, non-finite numbers, disabled features).
    External(String),
    /// A low-level mismatch that an enclosing parser always replaces.
    Internal,
}

/// An error and the slice of the filter text it points at.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) kind: Kind,
}

/// A recoverable error or a failure.
#[derive(Debug)]
pub(super) enum PErr {
    Error(Ctx),
    Failure(Ctx),
}

impl PErr {
    /// Commits to the current alternative: an error becomes a failure.
    pub(super) fn cut(self) -> Self {
        PErr::Failure(self.into_ctx())
    }

    pub(super) fn into_ctx(self) -> Ctx {
        match self {
            PErr::Error(ctx) | PErr::Failure(ctx) => ctx,
        }
    }
}

/// A parse result: the position after what was parsed, and the value.
pub(super) type PRes<T> = Result<(usize, T), PErr>;

/// A value or attribute name: its span in the text (inside the quotes) and its final text.
#[derive(Debug, Clone)]
pub(super) struct Tok {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) value: String,
}

/// The filter text being parsed.
pub(super) struct Cursor<'a> {
    pub(super) src: &'a str,
    source: Arc<str>,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Self { src, source: Arc::from(src) }
    }

    pub(super) fn rest(&self, pos: usize) -> &'a str {
        &self.src[pos..]
    }

    /// An error pointing at everything from `pos` to the end of the text.
    pub(super) fn ctx_input(&self, pos: usize, kind: Kind) -> Ctx {
        Ctx { start: pos, end: self.src.len(), kind }
    }

    pub(super) fn location(&self, start: usize, end: usize) -> Location {
        let before = &self.src[..start];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        let width = self.src[start..end].chars().count();
        Location { start: column, end: column + width, source: Arc::clone(&self.source) }
    }

    /// The message for an error, followed by its position line.
    pub(super) fn error(&self, ctx: &Ctx) -> FilterError {
        let fragment = &self.src[ctx.start..ctx.end];
        let location = self.location(ctx.start, ctx.end);
        FilterError { message: format!("{}\n{location}", describe(&ctx.kind, fragment)) }
    }

    /// Skips ASCII blanks (`nom`'s `multispace0`).
    pub(super) fn multispace0(&self, pos: usize) -> usize {
        let rest = self.rest(pos);
        pos + rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len()
    }

    /// Skips at least one ASCII blank.
    pub(super) fn multispace1(&self, pos: usize) -> Option<usize> {
        Some(self.multispace0(pos)).filter(|&end| end > pos)
    }

    pub(super) fn tag(&self, pos: usize, tag: &str) -> Option<usize> {
        self.rest(pos).starts_with(tag).then_some(pos + tag.len())
    }

    /// The end of the word (letters, digits, `_`, `-`, `.`) starting at `pos`.
    fn word_end(&self, pos: usize) -> usize {
        let rest = self.rest(pos);
        pos + rest.find(|c: char| !is_value_component(c)).unwrap_or(rest.len())
    }

    /// The end of the word at `pos` if that word is exactly `word`.
    pub(super) fn word_exact(&self, pos: usize, word: &str) -> Option<usize> {
        let end = self.word_end(pos);
        (&self.src[pos..end] == word).then_some(end)
    }

    /// A value or attribute name: a bare word or a quoted string, with the blanks after it.
    pub(super) fn value(&self, pos: usize) -> PRes<Tok> {
        let rest = self.rest(pos);
        let pos = pos + rest.len() - rest.trim_start().len();
        for name in ["_geoPoint", "_geoDistance"] {
            if self.tag(pos, name).is_some() {
                return Err(PErr::Failure(self.ctx_input(pos, Kind::ReservedGeo(name))));
            }
        }
        for (word, kind) in [
            ("_geo", Kind::ReservedGeo("_geo")),
            ("_geoRadius", Kind::MisusedGeoRadius),
            ("_geoBoundingBox", Kind::MisusedGeoBoundingBox),
        ] {
            if self.word_exact(pos, word).is_some() {
                return Err(PErr::Failure(self.ctx_input(pos, kind)));
            }
        }
        let parsed = match self.rest(pos).chars().next() {
            Some(quote @ ('\'' | '"')) => self.quoted(pos + 1, quote),
            _ => self.word_not_keyword(pos),
        };
        let (end, tok) = match parsed {
            Ok(parsed) => parsed,
            Err(PErr::Error(ctx)) => {
                let keyword = ctx.kind == Kind::ReservedKeyword;
                let rest = self.rest(pos);
                let word_end = pos + rest.find(is_syntax_component).unwrap_or(rest.len());
                let kind = Kind::ExpectedValue { keyword };
                return Err(PErr::Error(Ctx { start: pos, end: word_end, kind }));
            }
            Err(PErr::Failure(Ctx { kind: Kind::Char(quote), .. })) => {
                let kind = Kind::MissingClosingDelimiter(quote);
                return Err(PErr::Failure(self.ctx_input(pos, kind)));
            }
            Err(failure) => return Err(failure),
        };
        let end = self.multispace0(end);
        let tok_ctx = |kind| Ctx { start: tok.start, end: tok.end, kind };
        match unescape(&tok.value) {
            Ok(value) => Ok((end, Tok { value, ..tok })),
            Err(Unescape::Number) => Err(PErr::Error(tok_ctx(Kind::InvalidEscapedNumber))),
            Err(Unescape::Char) => Err(PErr::Error(tok_ctx(Kind::MalformedValue))),
            Err(Unescape::Incomplete) => Err(PErr::Failure(tok_ctx(Kind::MalformedValue))),
        }
    }

    /// The inside of a quoted string starting at `start` (after the opening quote), and the
    /// position after the closing quote; `\<quote>` stands for the quote.
    fn quoted(&self, start: usize, quote: char) -> PRes<Tok> {
        let rest = self.rest(start);
        let mut escaped = false;
        let mut chars = rest.char_indices();
        while let Some((offset, c)) = chars.next() {
            if c == quote {
                let raw = &rest[..offset];
                let value = if escaped {
                    raw.replace(&format!("\\{quote}"), &quote.to_string())
                } else {
                    raw.to_string()
                };
                let tok = Tok { start, end: start + offset, value };
                return Ok((start + offset + quote.len_utf8(), tok));
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, next)) => escaped |= next == quote,
                    None => {
                        return Err(PErr::Failure(self.ctx_input(start, Kind::MalformedValue)));
                    }
                }
            }
        }
        Err(PErr::Failure(self.ctx_input(self.src.len(), Kind::Char(quote))))
    }

    fn word_not_keyword(&self, pos: usize) -> PRes<Tok> {
        let end = self.word_end(pos);
        let word = &self.src[pos..end];
        if word.is_empty() {
            Err(PErr::Error(self.ctx_input(pos, Kind::Internal)))
        } else if KEYWORDS.contains(&word) {
            Err(PErr::Error(self.ctx_input(end, Kind::ReservedKeyword)))
        } else {
            Ok((end, Tok { start: pos, end, value: word.to_string() }))
        }
    }
}

fn is_value_component(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn is_syntax_component(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '=' | '<' | '>' | '!')
}

/// Meilisearch's message for an error pointing at `fragment`.
fn describe(kind: &Kind, fragment: &str) -> String {
    let shown = fragment.escape_debug();
    let nothing = fragment.trim().is_empty();
    match kind {
        Kind::ExpectedValue { .. } if nothing => {
            "Was expecting a value but instead got nothing.".to_string()
        }
        Kind::ExpectedValue { keyword: true } => format!(
            "Was expecting a value but instead got `{shown}`, which is a reserved keyword. To use \
             `{shown}` as a field name or a value, surround it by quotes."
        ),
        Kind::ExpectedValue { keyword: false } => {
            format!("Was expecting a value but instead got `{shown}`.")
        }
        Kind::MalformedValue => format!("Malformed value: `{shown}`."),
        Kind::MissingClosingDelimiter(c) => {
            format!("Expression `{shown}` is missing the following closing delimiter: `{c}`.")
        }
        Kind::InvalidPrimary => {
            let at = if nothing {
                "but instead got nothing.".to_string()
            } else {
                format!("at `{shown}`.")
            };
            format!(
                "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, \
                 `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, `IS EMPTY`, \
                 `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `STARTS WITH`, `NOT STARTS WITH`, \
                 `_geoRadius`, or `_geoBoundingBox` {at}"
            )
        }
        Kind::InvalidEscapedNumber => {
            format!("Found an invalid escaped sequence number: `{shown}`.")
        }
        Kind::ExpectedEof => format!(
            "Found unexpected characters at the end of the filter: `{shown}`. You probably \
             forgot an `OR` or an `AND` rule."
        ),
        Kind::GeoRadius => "The `_geoRadius` filter expects three arguments: \
                            `_geoRadius(latitude, longitude, radius)`."
            .to_string(),
        Kind::GeoBoundingBox => "The `_geoBoundingBox` filter expects two pairs of arguments: \
                                 `_geoBoundingBox([latitude, longitude], [latitude, longitude])`."
            .to_string(),
        Kind::ReservedGeo(name) => format!(
            "`{name}` is a reserved keyword and thus can't be used as a filter expression. Use \
             the `_geoRadius(latitude, longitude, distance)` or `_geoBoundingBox([latitude, \
             longitude], [latitude, longitude])` built-in rules to filter on `_geo` coordinates."
        ),
        Kind::MisusedGeoRadius => {
            "The `_geoRadius` filter is an operation and can't be used as a value.".to_string()
        }
        Kind::MisusedGeoBoundingBox => {
            "The `_geoBoundingBox` filter is an operation and can't be used as a value.".to_string()
        }
        Kind::InOpeningBracket => "Expected `[` after `IN` keyword.".to_string(),
        Kind::InClosingBracket => {
            "Expected matching `]` after the list of field names given to `IN[`".to_string()
        }
        Kind::InExpectedValue => format!(
            "Expected only comma-separated field names inside `IN[..]` but instead found \
             `{shown}`."
        ),
        Kind::DepthLimitReached => "The filter exceeded the maximum depth limit. Try rewriting \
                                    the filter so that it contains fewer nested conditions."
            .to_string(),
        Kind::External(message) => message.clone(),
        Kind::ReservedKeyword | Kind::Char(_) | Kind::Internal => {
            "Encountered an internal error while parsing your filter. Please fill an issue"
                .to_string()
        }
    }
}
