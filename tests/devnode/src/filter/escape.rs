//! Escape sequences inside filter values, resolved as the `unescaper` crate Meilisearch uses
//! resolves them.

/// Why an escape sequence could not be read.
#[derive(Debug, PartialEq)]
pub(super) enum Unescape {
    Incomplete,
    Number,
    Char,
}

/// Resolves `\n`, `\t`, `\\`, `\"`, `\'`, `\/`, `\b`, `\f`, `\r`, `\v`, `\xHH`, `\uHHHH`,
/// `\u{H..}` and octal `\NNN` escapes, as the `unescaper` crate Meilisearch uses does.
pub(super) fn unescape(text: &str) -> Result<String, Unescape> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let marker = chars.next().ok_or(Unescape::Incomplete)?;
        let resolved = match marker {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\'' | '"' | '\\' | '/' => marker,
            'u' => {
                let first = chars.next().ok_or(Unescape::Incomplete)?;
                let mut hex = String::new();
                if first == '{' {
                    hex.extend(chars.by_ref().take_while(|&c| c != '}'));
                } else {
                    hex.push(first);
                    for _ in 0..3 {
                        hex.push(chars.next().ok_or(Unescape::Incomplete)?);
                    }
                }
                let code = u32::from_str_radix(&hex, 16).map_err(|_| Unescape::Number)?;
                char::from_u32(code).ok_or(Unescape::Char)?
            }
            'x' => {
                let hex: String = [chars.next(), chars.next()]
                    .into_iter()
                    .collect::<Option<String>>()
                    .ok_or(Unescape::Incomplete)?;
                char::from(u8::from_str_radix(&hex, 16).map_err(|_| Unescape::Number)?)
            }
            '0'..='7' => {
                let extra = if marker <= '3' { 2 } else { 1 };
                let mut octal = marker.to_string();
                for _ in 0..extra {
                    match chars.next_if(|c| c.is_digit(8)) {
                        Some(digit) => octal.push(digit),
                        None => break,
                    }
                }
                char::from(u8::from_str_radix(&octal, 8).map_err(|_| Unescape::Number)?)
            }
            _ => return Err(Unescape::Char),
        };
        out.push(resolved);
    }
    Ok(out)
}
