//! Malformed filters: every one is rejected, with Meilisearch's message and position.

use serde_json::json;

use super::{error, error_of};

/// Meilisearch's message for a primary it could not read.
const OPERATION: &str = "Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, \
                         `NOT IN`, `TO`, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS NOT NULL`, \
                         `IS EMPTY`, `IS NOT EMPTY`, `CONTAINS`, `NOT CONTAINS`, `STARTS WITH`, \
                         `NOT STARTS WITH`, `_geoRadius`, or `_geoBoundingBox`";

#[test]
fn missing_values() {
    assert_eq!(
        error("price >>> 3"),
        "Was expecting a value but instead got nothing.\n8:8 price >>> 3"
    );
    assert_eq!(
        error("channel =    "),
        "Was expecting a value but instead got nothing.\n14:14 channel =    "
    );
    assert_eq!(
        error("channel = 🐻"),
        "Was expecting a value but instead got `🐻`.\n11:12 channel = 🐻"
    );
    assert_eq!(
        error("channel = 🐻 AND followers < 100"),
        "Was expecting a value but instead got `🐻`.\n11:12 channel = 🐻 AND followers < 100"
    );
    assert_eq!(
        error("x = EXISTS"),
        "Was expecting a value but instead got `EXISTS`, which is a reserved keyword. To use \
         `EXISTS` as a field name or a value, surround it by quotes.\n5:11 x = EXISTS"
    );
    assert_eq!(
        error("AND = 8"),
        "Was expecting a value but instead got `AND`, which is a reserved keyword. To use `AND` \
         as a field name or a value, surround it by quotes.\n1:4 AND = 8"
    );
    assert!(error("OR")
        .starts_with("Was expecting a value but instead got `OR`, which is a reserved keyword."));
    assert!(error("NOT OR EXISTS").ends_with("\n5:7 NOT OR EXISTS"));
    for text in ["x 1 TO ", "price == 3", "a IN [b] AND c = "] {
        assert!(
            error(text).starts_with("Was expecting a value but instead got nothing."),
            "{text}"
        );
    }
}

#[test]
fn unknown_operations() {
    assert_eq!(
        error("channel Ponce"),
        format!("{OPERATION} at `channel Ponce`.\n1:14 channel Ponce")
    );
    assert_eq!(error("'OR'"), format!("{OPERATION} at `\\'OR\\'`.\n1:5 'OR'"));
    assert_eq!(
        error("channel = Ponce OR"),
        format!("{OPERATION} but instead got nothing.\n19:19 channel = Ponce OR")
    );
    assert_eq!(
        error("title & Glass"),
        format!("{OPERATION} at `title & Glass`.\n1:14 title & Glass")
    );
    for text in [
        "colour NOT EXIST",
        "subscribers 100 TO1000",
        "value NULL",
        "value NOT NULL",
        "value EMPTY",
        "value NOT EMPTY",
        "value IS",
        "value IS NOT",
        "value IS EXISTS",
        "value IS NOT EXISTS",
        "x = 1 AND",
        "NOT",
        "a = 1 AND ()",
        "x 1 TO",
        "x STARTS  WITH a",
    ] {
        assert!(error(text).starts_with(OPERATION), "{text}: {}", error(text));
    }
}

#[test]
fn trailing_characters() {
    assert_eq!(
        error("channel = Ponce = 12"),
        "Found unexpected characters at the end of the filter: `= 12`. You probably forgot an \
         `OR` or an `AND` rule.\n17:21 channel = Ponce = 12"
    );
    let text = "channel = mv OR followers >= 1000)";
    assert!(error(text).ends_with(&format!("rule.\n34:35 {text}")));
    assert!(error(text).starts_with("Found unexpected characters at the end of the filter: `)`."));
    assert!(error("channel = ponce ORdog != 'bernese mountain'").starts_with(
        "Found unexpected characters at the end of the filter: `ORdog != \\'bernese mountain\\'`."
    ));
    // Lowercase keywords are not keywords, as in Meilisearch.
    assert!(error("brand = x and price > 3")
        .starts_with("Found unexpected characters at the end of the filter: `and price > 3`."));
    assert!(error("ORder = 1 ANDroid")
        .starts_with("Found unexpected characters at the end of the filter: `ANDroid`."));
    // Nothing consumes the blanks after these, exactly like Meilisearch's grammar.
    assert!(error("x EXISTS ")
        .starts_with("Found unexpected characters at the end of the filter: ` `."));
    assert!(error("_geoRadius(1, 2, 3) ").starts_with("Found unexpected characters"));
}

#[test]
fn unbalanced_delimiters() {
    assert_eq!(
        error("channel = mv OR (followers >= 1000"),
        "Expression `(followers >= 1000` is missing the following closing delimiter: `)`.\n17:35 \
            channel = mv OR (followers >= 1000"
    );
    assert_eq!(
        error("channel = 'ponce"),
        "Expression `\\'ponce` is missing the following closing delimiter: `'`.\n11:17 channel = \
            'ponce"
    );
    assert_eq!(
        error("channel = \"ponce"),
        "Expression `\\\"ponce` is missing the following closing delimiter: `\"`.\n11:17 channel = \
            \"ponce"
    );
    assert!(error("((a = 1)")
        .starts_with("Expression `((a = 1)` is missing the following closing delimiter: `)`."));
    assert!(error("'unterminated = 1").starts_with("Expression `\\'unterminated = 1` is missing"));
    assert!(
        error("(a = 1))").starts_with("Found unexpected characters at the end of the filter: `)`.")
    );
    assert!(error(")").starts_with(OPERATION));
}

#[test]
fn in_lists() {
    assert_eq!(
        error("colour IN blue, green]"),
        "Expected `[` after `IN` keyword.\n11:23 colour IN blue, green]"
    );
    assert_eq!(
        error("colour IN [blue, green, 'blue' > 2]"),
        "Expected only comma-separated field names inside `IN[..]` but instead found `> \
            2]`.\n32:36 colour IN [blue, green, 'blue' > 2]"
    );
    assert_eq!(
        error("colour IN [blue, green, AND]"),
        "Expected only comma-separated field names inside `IN[..]` but instead found \
            `AND]`.\n25:29 colour IN [blue, green, AND]"
    );
    assert_eq!(
        error("colour IN [blue, green"),
        "Expected matching `]` after the list of field names given to `IN[`\n23:23 colour IN \
            [blue, green"
    );
    assert_eq!(
        error("colour IN ['blue, green"),
        "Expression `\\'blue, green` is missing the following closing delimiter: `'`.\n12:24 \
            colour IN ['blue, green"
    );
    assert!(error("colour NOT IN blue").starts_with("Expected `[` after `IN` keyword."));
}

#[test]
fn geo_rules() {
    let radius = "The `_geoRadius` filter expects three arguments: `_geoRadius(latitude, \
        longitude, radius)`.";
    assert_eq!(error("_geoRadius"), format!("{radius}\n1:11 _geoRadius"));
    assert_eq!(error("_geoRadius = 12"), format!("{radius}\n1:16 _geoRadius = 12"));
    assert_eq!(error("_geoRadius(1, 2)"), format!("{radius}\n17:17 _geoRadius(1, 2)"));
    for text in [
        "_geoRadius(1, 2, 3, 4)",
        "_geoRadius(a, 2, 3)",
        "_geoRadius(1, 2, 3",
        "_geoRadius (1, 2, 3)",
        "_geoRadius(1, 2, 1e)",
    ] {
        assert!(error(text).starts_with(radius), "{text}");
    }
    let bbox = "The `_geoBoundingBox` filter expects two pairs of arguments: \
        `_geoBoundingBox([latitude, longitude], [latitude, longitude])`.";
    assert_eq!(error("_geoBoundingBox"), format!("{bbox}\n1:16 _geoBoundingBox"));
    assert_eq!(error("_geoBoundingBox = 12"), format!("{bbox}\n1:21 _geoBoundingBox = 12"));
    assert_eq!(
        error("_geoBoundingBox(1.0, 1.0)"),
        format!("{bbox}\n1:26 _geoBoundingBox(1.0, 1.0)")
    );
    for text in [
        "_geoBoundingBox([1, 2])",
        "_geoBoundingBox([1, 2], [3])",
        "_geoBoundingBox([1, 2], [3, 4], [5, 6])",
        "_geoBoundingBox([1, 2], [3, 4]",
    ] {
        assert!(error(text).starts_with(bbox), "{text}");
    }
    assert_eq!(
        error("_geoRadius(100, 2, 3)"),
        "Bad latitude `100`. Latitude must be contained between -90 and 90 degrees. \n12:15 \
            _geoRadius(100, 2, 3)"
    );
    assert!(error("_geoRadius(-90.5, 2, 3)").starts_with(
        "Bad latitude `-90.5`. Latitude must be contained between -90 and 90 degrees."
    ));
    assert!(error("_geoRadius(10, 181, 3)").starts_with(
        "Bad longitude `181`. Longitude must be contained between -180 and 180 degrees."
    ));
    let infinite = error("_geoRadius(10, 20, 1e999)");
    assert!(infinite.starts_with("Non finite floats are not supported\n20:25 "));
    assert!(error("_geoBoundingBox([91, 2], [3, 4])").starts_with("Bad latitude `91`."));
    assert!(error("_geoBoundingBox([1, 2], [3, -200])").starts_with("Bad longitude `-200`."));
    assert!(error("_geoBoundingBox([1, 2], [3, 4])")
        .starts_with("The top latitude `1` is below the bottom latitude `3`."));
}

#[test]
fn reserved_geo_words() {
    let reserved = |name: &str| {
        format!(
            "`{name}` is a reserved keyword and thus can't be used as a filter expression. Use \
             the `_geoRadius(latitude, longitude, distance)` or `_geoBoundingBox([latitude, \
             longitude], [latitude, longitude])` built-in rules to filter on `_geo` coordinates."
        )
    };
    assert_eq!(
        error("_geoPoint(12, 13, 14)"),
        format!("{}\n1:22 _geoPoint(12, 13, 14)", reserved("_geoPoint"))
    );
    assert_eq!(
        error("position <= _geoPoint(12, 13, 14)"),
        format!("{}\n13:34 position <= _geoPoint(12, 13, 14)", reserved("_geoPoint"))
    );
    assert!(error("_geoDistance(12, 13, 14)").starts_with(&reserved("_geoDistance")));
    assert!(error("_geo(12, 13, 14)").starts_with(&reserved("_geo")));
    assert!(error("_geo = 12").starts_with(&reserved("_geo")));
    assert_eq!(
        error("position <= _geoRadius(12, 13, 14)"),
        "The `_geoRadius` filter is an operation and can't be used as a value.\n13:35 position <= \
            _geoRadius(12, 13, 14)"
    );
    assert!(error("x = _geoBoundingBox([1, 2], [0, 1])")
        .starts_with("The `_geoBoundingBox` filter is an operation and can't be used as a value."));
}

#[test]
fn escapes_and_depth() {
    assert_eq!(
        error(r#"title = "a\xZZ""#),
        "Found an invalid escaped sequence number: `a\\\\xZZ`.\n10:15 title = \"a\\xZZ\""
    );
    assert!(error(r#"title = "C:\path""#).starts_with("Malformed value: `C:\\\\path`."));
    assert!(error(r#""a\q" = 1"#).starts_with(OPERATION));
    let parens = format!("{}x = 1{}", "(".repeat(50), ")".repeat(50));
    let depth = "The filter exceeded the maximum depth limit. Try rewriting the filter so that it \
        contains fewer nested conditions.";
    assert!(error(&parens).starts_with(&format!("{depth}\n51:106 ")));
    assert!(
        error(&format!("{}x = 1", "NOT ".repeat(199))).starts_with(&format!("{depth}\n797:802 "))
    );
    assert!(
        error(&format!("{}x = 1", "NOT ".repeat(198))).starts_with(&format!("{depth}\n793:798 "))
    );
    // Deep nesting is refused, never a stack overflow.
    assert!(error(&"(".repeat(100_000)).starts_with(depth));
}

#[test]
fn contains_needs_an_experimental_feature() {
    let message = "Using `CONTAINS` in a filter requires enabling the `contains filter` \
        experimental feature. See https://github.com/orgs/meilisearch/discussions/763";
    assert_eq!(error("doggo CONTAINS kefir"), format!("{message}\n7:15 doggo CONTAINS kefir"));
    assert!(error("doggo NOT CONTAINS kefir").starts_with(message));
}

#[test]
fn parameter_types() {
    assert_eq!(
        error_of(&json!(true)),
        "Invalid syntax for the filter parameter: `expected String, Array, found: true`."
    );
    assert_eq!(
        error_of(&json!(12)),
        "Invalid syntax for the filter parameter: `expected String, Array, found: 12`."
    );
    assert_eq!(
        error_of(&json!({"a": 1})),
        "Invalid syntax for the filter parameter: `expected String, Array, found: {\"a\":1}`."
    );
    assert_eq!(
        error_of(&json!(["a = 1", 2])),
        "Invalid syntax for the filter parameter: `expected String, [String], found: 2`."
    );
    assert_eq!(
        error_of(&json!([["a = 1", null]])),
        "Invalid syntax for the filter parameter: `expected String, found: null`."
    );
    assert_eq!(
        error_of(&json!([[["a = 1"]]])),
        "Invalid syntax for the filter parameter: `expected String, found: [\"a = 1\"]`."
    );
    // Shapes are checked before any string is parsed.
    assert!(error_of(&json!(["a = ", 2])).ends_with("found: 2`."));
    assert!(error_of(&json!(["a = 1", ["b ="]]))
        .starts_with("Was expecting a value but instead got nothing.\n4:4 b ="));
}

#[test]
fn generated_inputs_never_panic() {
    const PIECES: [&str; 44] = [
        "a = 1",
        "b.c 1 TO 2",
        "a IN [1, x]",
        "_geoRadius(1, 2, 300000)",
        "a",
        "b.c",
        "'q",
        "\"",
        "\\",
        "'x y'",
        "\"é\\\"\"",
        " ",
        "  ",
        "\n",
        "(",
        ")",
        "[",
        "]",
        ",",
        "=",
        "!=",
        ">",
        ">=",
        "<",
        "<=",
        "AND",
        "OR",
        "NOT",
        "IN",
        "TO",
        "IS",
        "NULL",
        "EMPTY",
        "EXISTS",
        "CONTAINS",
        "STARTS WITH",
        "_geoRadius(",
        "_geoBoundingBox(",
        "_geo",
        "12",
        "-1.5e3",
        "🐻",
        "\u{a0}",
        "\\u{41}",
    ];
    let doc = super::object(json!({"a": [1, "x"], "b": {"c": null}, "_geo": {"lat": 1, "lng": 2}}));
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let (mut parsed, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let mut text = String::new();
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        for _ in 0..(state >> 60) + 1 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            text.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
            text.push(' ');
        }
        match crate::filter::parse_filter(&json!(text)) {
            Ok(Some(filter)) => {
                parsed += 1;
                let _ = (filter.to_string(), filter.matches(&doc), filter.attributes());
                let _ = filter.check_filterable("x", &["a".to_string()]);
            }
            Ok(None) => {}
            Err(err) => {
                rejected += 1;
                assert!(err.message.contains('\n'), "{text:?}: {}", err.message);
            }
        }
    }
    assert!(parsed > 50 && rejected > 10_000, "{parsed} parsed, {rejected} rejected");
}
