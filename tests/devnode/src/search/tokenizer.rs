//! Turning text into words the way Meilisearch's tokenizer does for Latin text: words are runs
//! of letters and digits, lowercased and stripped of diacritics; a soft separator (space, comma,
//! dash...) moves the position by 1 and a hard one (`.`, `!`, `?`, `;`, new line) by 8, which is
//! what proximity and word position see. A `.` or `,` between two digits is a soft separator, so
//! `5.0` gives the words `5` and `0` one position apart. CJK ideographs are one word each.

use serde_json::Value;

/// One word of a text: its normalized form, its position, and where it is in the original text
/// (byte offsets, for highlighting).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub word: String,
    pub pos: u32,
    pub start: usize,
    pub end: usize,
}

/// How far a hard separator moves the position.
const HARD_GAP: u32 = 8;

fn is_hard_separator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';' | '\n' | '\r' | '…' | '。' | '！' | '？' | '；' | '¿' | '¡')
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF)
}

/// A character of a word, lowercased and without its diacritics (Latin scripts).
pub fn fold_char(c: char, out: &mut String) {
    for l in c.to_lowercase() {
        let base = match l {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
            'ď' | 'đ' => 'd',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
            'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
            'ĥ' | 'ħ' => 'h',
            'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
            'ĵ' => 'j',
            'ķ' => 'k',
            'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
            'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
            'ŕ' | 'ŗ' | 'ř' => 'r',
            'ś' | 'ŝ' | 'ş' | 'š' => 's',
            'ţ' | 'ť' | 'ŧ' => 't',
            'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
            'ŵ' => 'w',
            'ý' | 'ÿ' | 'ŷ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            'æ' => {
                out.push_str("ae");
                continue;
            }
            'œ' => {
                out.push_str("oe");
                continue;
            }
            other => other,
        };
        out.push(base);
    }
}

/// Normalize one word (lowercase, no diacritics).
pub fn normalize(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        fold_char(c, &mut out);
    }
    out
}

/// Split `text` into words with positions starting at `first_pos`.
pub fn tokenize_from(text: &str, first_pos: u32) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut pos = first_pos;
    let mut word = String::new();
    let mut word_start = 0usize;
    let mut in_word = false;
    let mut gap_hard = false;
    let mut gap_len = 0usize;
    let mut prev_char: Option<char> = None;
    let mut chars = text.char_indices().peekable();

    let push = |tokens: &mut Vec<Token>, word: &mut String, start, end, pos: &mut u32, hard| {
        if !tokens.is_empty() {
            *pos += if hard { HARD_GAP } else { 1 };
        }
        tokens.push(Token { word: std::mem::take(word), pos: *pos, start, end });
    };

    while let Some((i, c)) = chars.next() {
        if is_cjk(c) {
            if in_word {
                push(&mut tokens, &mut word, word_start, i, &mut pos, gap_hard);
                gap_hard = false;
                in_word = false;
            }
            fold_char(c, &mut word);
            push(&mut tokens, &mut word, i, i + c.len_utf8(), &mut pos, gap_hard);
            gap_hard = false;
            gap_len = 0;
        } else if c.is_alphanumeric() {
            if !in_word {
                in_word = true;
                word_start = i;
            }
            fold_char(c, &mut word);
        } else {
            if in_word {
                in_word = false;
                let hard_before = gap_hard;
                push(&mut tokens, &mut word, word_start, i, &mut pos, hard_before);
                gap_hard = false;
                gap_len = 0;
            }
            gap_len += 1;
            let next = chars.peek().map(|(_, n)| *n);
            let decimal = matches!(c, '.' | ',')
                && gap_len == 1
                && prev_char.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|n| n.is_ascii_digit());
            if is_hard_separator(c) && !decimal {
                gap_hard = true;
            }
        }
        prev_char = Some(c);
    }
    if in_word {
        push(&mut tokens, &mut word, word_start, text.len(), &mut pos, gap_hard);
    }
    tokens
}

/// Split `text` into words, positions from 0.
pub fn tokenize(text: &str) -> Vec<Token> {
    tokenize_from(text, 0)
}

/// The text Meilisearch indexes for a JSON number (`5.0` stays `5.0`, `12` is `12`).
pub fn number_text(n: &serde_json::Number) -> String {
    n.to_string()
}

/// The searchable texts of a field value: strings, numbers and booleans as text; arrays and
/// objects flattened in order.
pub fn value_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(b.to_string()),
        Value::Number(n) => out.push(number_text(n)),
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| value_texts(v, out)),
        Value::Object(map) => map.values().for_each(|v| value_texts(v, out)),
    }
}

/// Tokens of a whole field value; array elements and nested values are kept apart by a hard gap.
pub fn tokenize_value(value: &Value) -> Vec<Token> {
    let mut texts = Vec::new();
    value_texts(value, &mut texts);
    let mut tokens: Vec<Token> = Vec::new();
    for text in texts {
        let first = tokens.last().map_or(0, |t| t.pos + HARD_GAP);
        tokens.extend(tokenize_from(&text, first));
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, u32)> {
        tokenize(text).into_iter().map(|t| (t.word, t.pos)).collect()
    }

    #[test]
    fn soft_and_hard_separators_move_positions_by_1_and_8() {
        let got = words("A white camera by Acme. office, fast");
        let want = [("a", 0), ("white", 1), ("camera", 2), ("by", 3), ("acme", 4)];
        for (i, (w, p)) in want.iter().enumerate() {
            assert_eq!(got[i], (w.to_string(), *p));
        }
        assert_eq!(got[5], ("office".to_string(), 12));
        assert_eq!(got[6], ("fast".to_string(), 13));
    }

    #[test]
    fn decimal_numbers_split_softly_and_diacritics_fold() {
        assert_eq!(words("5.0"), vec![("5".into(), 0), ("0".into(), 1)]);
        assert_eq!(words("Crème Brûlée"), vec![("creme".into(), 0), ("brulee".into(), 1)]);
    }

    #[test]
    fn byte_offsets_point_at_the_original_text() {
        let text = "Hé, world";
        let t = tokenize(text);
        assert_eq!(&text[t[0].start..t[0].end], "Hé");
        assert_eq!(&text[t[1].start..t[1].end], "world");
    }
}
