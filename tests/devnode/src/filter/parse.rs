//! The filter expression grammar: `OR`, `AND`, `NOT`, parentheses, conditions and geo rules.
//!
//! It tries the same alternatives in the same order as Meilisearch's parser, so that a
//! malformed filter fails with the same message at the same position:
//!
//! ```text
//! filter    = or EOF
//! or        = and ("OR" and)*
//! and       = not ("AND" not)*
//! not       = "NOT" not | primary
//! primary   = "(" or ")" | geoRadius | geoBoundingBox | value condition
//! condition = "IN" list | "NOT" "IN" list | ("<=" | ">=" | "!=" | "<" | ">" | "=") value
//!           | "IS" "NULL" | "IS" "NOT" "NULL" | "IS" "EMPTY" | "IS" "NOT" "EMPTY"
//!           | "EXISTS" | "NOT" "EXISTS" | value "TO" value
//!           | "CONTAINS" value | "NOT" "CONTAINS" value
//!           | "STARTS WITH" value | "NOT" "STARTS WITH" value
//! ```

use super::syntax::{Ctx, Cursor, Kind, PErr, PRes, Tok};
use super::{Attribute, Filter, FilterError, Op};

/// How deep the rules may recurse before parsing gives up, as in Meilisearch.
const MAX_DEPTH: usize = 200;

/// Builds a condition's operator from its operand.
type MakeOp = fn(String) -> Op;

/// The comparison operators, longest first.
const OPERATORS: [(&str, MakeOp); 6] = [
    ("<=", Op::LowerThanOrEqual),
    (">=", Op::GreaterThanOrEqual),
    ("!=", Op::NotEqual),
    ("<", Op::LowerThan),
    (">", Op::GreaterThan),
    ("=", Op::Equal),
];

/// The keyword sequences of the operand-less conditions, in the order they are tried.
const UNARY: [(&[&str], Op, bool); 6] = [
    (&["IS", "NULL"], Op::Null, false),
    (&["IS", "NOT", "NULL"], Op::Null, true),
    (&["IS", "EMPTY"], Op::Empty, false),
    (&["IS", "NOT", "EMPTY"], Op::Empty, true),
    (&["EXISTS"], Op::Exists, false),
    (&["NOT", "EXISTS"], Op::Exists, true),
];

/// Meilisearch's answer to `CONTAINS` while its experimental feature is off.
const CONTAINS_DISABLED: &str = "Using `CONTAINS` in a filter requires enabling the `contains \
                                 filter` experimental feature. See \
                                 https://github.com/orgs/meilisearch/discussions/763";

/// Parses one filter string; `Ok(None)` when it is blank.
pub(super) fn parse_str(src: &str) -> Result<Option<Filter>, FilterError> {
    if src.trim().is_empty() {
        return Ok(None);
    }
    let cursor = Cursor::new(src);
    match cursor.or(0, 0) {
        Ok((end, filter)) if end == src.len() => Ok(Some(filter)),
        Ok((end, _)) => Err(cursor.error(&cursor.ctx_input(end, Kind::ExpectedEof))),
        Err(err) => Err(cursor.error(&err.into_ctx())),
    }
}

type Rule<'a> = fn(&Cursor<'a>, usize, usize) -> PRes<Filter>;

impl<'a> Cursor<'a> {
    fn or(&self, pos: usize, depth: usize) -> PRes<Filter> {
        self.chain(pos, depth, "OR", Self::and, Filter::Or)
    }

    fn and(&self, pos: usize, depth: usize) -> PRes<Filter> {
        self.chain(pos, depth, "AND", Self::not, Filter::And)
    }

    /// `operand (keyword operand)*`; once the keyword is read, the operand must follow.
    fn chain(
        &self,
        pos: usize,
        depth: usize,
        keyword: &str,
        operand: Rule<'a>,
        join: fn(Vec<Filter>) -> Filter,
    ) -> PRes<Filter> {
        self.check_depth(pos, depth)?;
        let (mut pos, first) = operand(self, pos, depth + 1)?;
        let mut items = vec![first];
        while let Some(next) = self.word_exact(self.multispace0(pos), keyword) {
            let (end, item) =
                operand(self, self.multispace0(next), depth + 1).map_err(PErr::cut)?;
            items.push(item);
            pos = end;
        }
        Ok((pos, if items.len() == 1 { items.remove(0) } else { join(items) }))
    }

    fn not(&self, pos: usize, depth: usize) -> PRes<Filter> {
        self.check_depth(pos, depth)?;
        if let Some(next) = self.word_exact(self.multispace0(pos), "NOT") {
            let (end, inner) = self.not(self.multispace0(next), depth + 1).map_err(PErr::cut)?;
            return Ok((end, inner.negate()));
        }
        self.primary(pos, depth + 1)
    }

    fn check_depth(&self, pos: usize, depth: usize) -> Result<(), PErr> {
        if depth > MAX_DEPTH {
            return Err(PErr::Error(self.ctx_input(pos, Kind::DepthLimitReached)));
        }
        Ok(())
    }

    fn primary(&self, pos: usize, depth: usize) -> PRes<Filter> {
        self.check_depth(pos, depth)?;
        match self.primary_alternatives(pos, depth) {
            Err(PErr::Error(_)) => Err(PErr::Error(self.ctx_input(pos, Kind::InvalidPrimary))),
            other => other,
        }
    }

    fn primary_alternatives(&self, pos: usize, depth: usize) -> PRes<Filter> {
        let open = self.multispace0(pos);
        if self.rest(open).starts_with('(') {
            let (end, inner) = self.or(self.multispace0(open + 1), depth + 1).map_err(PErr::cut)?;
            let close = self.multispace0(end);
            if !self.rest(close).starts_with(')') {
                let kind = Kind::MissingClosingDelimiter(')');
                return Err(PErr::Failure(self.ctx_input(pos, kind)));
            }
            return Ok((self.multispace0(close + 1), inner));
        }
        if let Some(result) = self.geo_radius(pos) {
            return result;
        }
        if let Some(result) = self.geo_bounding_box(pos) {
            return result;
        }
        let (after, name) = match self.value(pos) {
            Ok(parsed) => parsed,
            // Meilisearch's last alternative turns a misplaced keyword into a failure.
            Err(PErr::Error(ctx)) if ctx.kind == (Kind::ExpectedValue { keyword: true }) => {
                return Err(PErr::Failure(ctx));
            }
            Err(err) => return Err(err),
        };
        let attribute =
            Attribute { location: self.location(name.start, name.end), name: name.value };
        self.condition(after, attribute)
    }

    /// Everything that may follow an attribute name.
    fn condition(&self, pos: usize, attribute: Attribute) -> PRes<Filter> {
        if let Some(list) = self.in_list(pos) {
            let (end, values) = list?;
            return Ok((end, Filter::In { attribute, values }));
        }
        if let Some(list) = self.word_exact(pos, "NOT").and_then(|next| self.in_list(next)) {
            let (end, values) = list?;
            return Ok((end, Filter::In { attribute, values }.negate()));
        }
        for (symbol, make) in OPERATORS {
            if let Some(next) = self.tag(pos, symbol) {
                let (end, value) = self.value(next).map_err(PErr::cut)?;
                return Ok((end, Filter::Condition { attribute, op: make(value.value) }));
            }
        }
        for (words, op, negated) in UNARY {
            if let Some(end) = self.keywords(pos, words) {
                let condition = Filter::Condition { attribute, op };
                return Ok((end, if negated { condition.negate() } else { condition }));
            }
        }
        match self.value(pos) {
            Ok((next, from)) => {
                if let Some(next) = self.tag(next, "TO").and_then(|to| self.multispace1(to)) {
                    let (end, to) = self.value(next).map_err(PErr::cut)?;
                    let op = Op::Between { from: from.value, to: to.value };
                    return Ok((end, Filter::Condition { attribute, op }));
                }
            }
            Err(PErr::Error(_)) => {}
            Err(failure) => return Err(failure),
        }
        for words in [&["CONTAINS"][..], &["NOT", "CONTAINS"]] {
            if let Some(next) = self.keywords(pos, words) {
                self.value(next).map_err(PErr::cut)?;
                let start = next - "CONTAINS".len();
                let kind = Kind::External(CONTAINS_DISABLED.to_string());
                return Err(PErr::Failure(Ctx { start, end: next, kind }));
            }
        }
        for (words, negated) in [(&["STARTS WITH"][..], false), (&["NOT", "STARTS WITH"], true)] {
            if let Some(next) = self.keywords(pos, words) {
                let (end, value) = self.value(next).map_err(PErr::cut)?;
                let condition = Filter::Condition { attribute, op: Op::StartsWith(value.value) };
                return Ok((end, if negated { condition.negate() } else { condition }));
            }
        }
        Err(PErr::Error(self.ctx_input(pos, Kind::Internal)))
    }

    /// Keywords matched as prefixes, separated by at least one blank.
    fn keywords(&self, pos: usize, words: &[&str]) -> Option<usize> {
        let mut pos = pos;
        for (index, word) in words.iter().enumerate() {
            if index > 0 {
                pos = self.multispace1(pos)?;
            }
            pos = self.tag(pos, word)?;
        }
        Some(pos)
    }

    /// `IN [value, ...]`: `None` when there is no `IN`, a failure when what follows is wrong.
    fn in_list(&self, pos: usize) -> Option<PRes<Vec<String>>> {
        let next = self.word_exact(self.multispace0(pos), "IN")?;
        let open = self.multispace0(next);
        if !self.rest(open).starts_with('[') {
            return Some(Err(PErr::Failure(self.ctx_input(open, Kind::InOpeningBracket))));
        }
        let mut pos = open + 1;
        let mut values = Vec::new();
        match self.value(pos) {
            Ok((end, first)) => {
                values.push(first.value);
                pos = end;
                while let Some(comma) = self.tag(self.multispace0(pos), ",") {
                    match self.value(self.multispace0(comma)) {
                        Ok((end, value)) => {
                            values.push(value.value);
                            pos = end;
                        }
                        Err(PErr::Error(_)) => break,
                        Err(failure) => return Some(Err(failure)),
                    }
                }
                if let Some(comma) = self.tag(self.multispace0(pos), ",") {
                    pos = self.multispace0(comma);
                }
            }
            Err(PErr::Error(_)) => {}
            Err(failure) => return Some(Err(failure)),
        }
        if let Some(close) = self.tag(self.multispace0(pos), "]") {
            return Some(Ok((self.multispace0(close), values)));
        }
        let kind =
            if pos == self.src.len() { Kind::InClosingBracket } else { Kind::InExpectedValue };
        Some(Err(PErr::Failure(self.ctx_input(pos, kind))))
    }

    /// `_geoRadius(lat, lng, radius)`: `None` when the keyword is absent.
    fn geo_radius(&self, pos: usize) -> Option<PRes<Filter>> {
        let next = self.word_exact(self.multispace0(pos), "_geoRadius")?;
        let fail = |at| PErr::Failure(self.ctx_input(at, Kind::GeoRadius));
        let parsed = self.tag(next, "(").and_then(|open| self.float_list(open));
        let Some((end, args)) = parsed.and_then(|(end, args)| Some((self.tag(end, ")")?, args)))
        else {
            return Some(Err(fail(pos)));
        };
        let [lat, lng, radius] = &args[..] else { return Some(Err(fail(end))) };
        Some(self.geo_point(lat, lng).and_then(|(lat_value, lng_value)| {
            let radius = self.finite(radius)?;
            let location = self.location(lat.start, lat.end);
            Ok((end, Filter::GeoRadius { lat: lat_value, lng: lng_value, radius, location }))
        }))
    }

    /// `_geoBoundingBox([lat, lng], [lat, lng])`: `None` when the keyword is absent.
    fn geo_bounding_box(&self, pos: usize) -> Option<PRes<Filter>> {
        let next = self.word_exact(self.multispace0(pos), "_geoBoundingBox")?;
        let fail = |at| PErr::Failure(self.ctx_input(at, Kind::GeoBoundingBox));
        let parsed = self.tag(next, "(").and_then(|open| self.point_list(open));
        let Some((end, args)) = parsed.and_then(|(end, args)| Some((self.tag(end, ")")?, args)))
        else {
            return Some(Err(fail(pos)));
        };
        let [top_right, bottom_left] = &args[..] else { return Some(Err(fail(end))) };
        let ([top, right], [bottom, left]) = (&top_right[..], &bottom_left[..]) else {
            return Some(Err(fail(end)));
        };
        Some((|| {
            let numbers = [self.finite(top)?, self.finite(right)?];
            let [top_value, right_value] = numbers;
            let [bottom_value, left_value] = [self.finite(bottom)?, self.finite(left)?];
            self.geo_point(top, right)?;
            self.geo_point(bottom, left)?;
            if top_value < bottom_value {
                let message = format!(
                    "The top latitude `{top_value}` is below the bottom latitude `{bottom_value}`."
                );
                return Err(self.external(left, message));
            }
            Ok((
                end,
                Filter::GeoBoundingBox {
                    top_right: [top_value, right_value],
                    bottom_left: [bottom_value, left_value],
                    location: self.location(top.start, top.end),
                },
            ))
        })())
    }

    /// A latitude and a longitude, checked to be on Earth.
    fn geo_point(&self, lat: &Tok, lng: &Tok) -> Result<(f64, f64), PErr> {
        let (lat_value, lng_value) = (self.finite(lat)?, self.finite(lng)?);
        if !(-90.0..=90.0).contains(&lat_value) {
            let message = format!(
                "Bad latitude `{lat_value}`. Latitude must be contained between -90 and 90 \
                 degrees. "
            );
            return Err(self.external(lat, message));
        }
        if !(-180.0..=180.0).contains(&lng_value) {
            let message = format!(
                "Bad longitude `{lng_value}`. Longitude must be contained between -180 and 180 \
                 degrees. "
            );
            return Err(self.external(lng, message));
        }
        Ok((lat_value, lng_value))
    }

    fn finite(&self, tok: &Tok) -> Result<f64, PErr> {
        match tok.value.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok(number),
            Ok(_) => Err(self.external(tok, "Non finite floats are not supported".to_string())),
            Err(err) => Err(self.external(tok, err.to_string())),
        }
    }

    fn external(&self, tok: &Tok, message: String) -> PErr {
        PErr::Failure(Ctx { start: tok.start, end: tok.end, kind: Kind::External(message) })
    }

    /// `[float, ...] (, [float, ...])*`, each group surrounded by optional blanks.
    fn point_list(&self, pos: usize) -> Option<(usize, Vec<Vec<Tok>>)> {
        let group = |pos: usize| {
            let open = self.tag(self.multispace0(pos), "[")?;
            let (end, floats) = self.float_list(open)?;
            Some((self.multispace0(self.tag(end, "]")?), floats))
        };
        separated(pos, group, |pos| self.tag(pos, ","))
    }

    /// `float (, float)*`, each float surrounded by optional blanks.
    fn float_list(&self, pos: usize) -> Option<(usize, Vec<Tok>)> {
        let float = |pos: usize| {
            let start = self.multispace0(pos);
            let end = recognize_float(self.src, start)?;
            let tok = Tok { start, end, value: self.src[start..end].to_string() };
            Some((self.multispace0(end), tok))
        };
        separated(pos, float, |pos| self.tag(pos, ","))
    }
}

/// One or more `item`s separated by `separator` (`nom`'s `separated_list1`).
fn separated<T>(
    pos: usize,
    item: impl Fn(usize) -> Option<(usize, T)>,
    separator: impl Fn(usize) -> Option<usize>,
) -> Option<(usize, Vec<T>)> {
    let (mut pos, first) = item(pos)?;
    let mut items = vec![first];
    while let Some((end, next)) = separator(pos).and_then(&item) {
        items.push(next);
        pos = end;
    }
    Some((pos, items))
}

/// The end of a float literal at `pos` (`nom`'s `recognize_float`):
/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`.
fn recognize_float(src: &str, pos: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let digits = |from: usize| {
        bytes[from.min(bytes.len())..].iter().take_while(|b| b.is_ascii_digit()).count()
    };
    let mut end = pos + usize::from(matches!(bytes.get(pos), Some(b'+' | b'-')));
    let integer = digits(end);
    if integer > 0 {
        end += integer;
        if bytes.get(end) == Some(&b'.') {
            end += 1 + digits(end + 1);
        }
    } else if bytes.get(end) == Some(&b'.') && digits(end + 1) > 0 {
        end += 1 + digits(end + 1);
    } else {
        return None;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exponent = end + 1;
        exponent += usize::from(matches!(bytes.get(exponent), Some(b'+' | b'-')));
        let count = digits(exponent);
        if count == 0 {
            return None;
        }
        end = exponent + count;
    }
    Some(end)
}
