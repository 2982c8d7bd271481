//! The shapes filters parse into.

use serde_json::json;

use super::{parse, show};
use crate::filter::escape::{unescape, Unescape};
use crate::filter::parse_filter;

#[test]
fn conditions_of_every_operator() {
    assert_eq!(show("channel = Ponce"), "{channel} = {Ponce}");
    assert_eq!(show("subscribers = 12"), "{subscribers} = {12}");
    assert_eq!(show("channel != ponce"), "{channel} != {ponce}");
    assert_eq!(show("subscribers < 1000"), "{subscribers} < {1000}");
    assert_eq!(show("subscribers > 1000"), "{subscribers} > {1000}");
    assert_eq!(show("subscribers <= 1000"), "{subscribers} <= {1000}");
    assert_eq!(show("subscribers >= 1000"), "{subscribers} >= {1000}");
    assert_eq!(show("subscribers 100 TO 1000"), "{subscribers} {100} TO {1000}");
    assert_eq!(show("price>=10"), "{price} >= {10}");
    assert_eq!(show("subscribers EXISTS"), "{subscribers} EXISTS");
    assert_eq!(show("subscribers NOT   EXISTS"), "NOT ({subscribers} EXISTS)");
    assert_eq!(show("subscribers IS NULL"), "{subscribers} IS NULL");
    assert_eq!(show("subscribers  IS   NOT   NULL"), "NOT ({subscribers} IS NULL)");
    assert_eq!(show("subscribers IS EMPTY"), "{subscribers} IS EMPTY");
    assert_eq!(show("subscribers IS NOT EMPTY"), "NOT ({subscribers} IS EMPTY)");
    assert_eq!(show("title STARTS WITH 'hel'"), "{title} STARTS WITH {hel}");
    assert_eq!(show("title NOT STARTS WITH hel"), "NOT ({title} STARTS WITH {hel})");
    assert_eq!(show("price = -1.5e3"), "{price} = {-1.5e3}");
}

#[test]
fn in_lists() {
    assert_eq!(show("colour IN[]"), "{colour} IN[]");
    assert_eq!(show("colour IN[green]"), "{colour} IN[{green}, ]");
    assert_eq!(show("colour IN[green,]"), "{colour} IN[{green}, ]");
    assert_eq!(show(" colour IN [  green , blue , ]"), "{colour} IN[{green}, {blue}, ]");
    assert_eq!(show("colour NOT IN[green,blue]"), "NOT ({colour} IN[{green}, {blue}, ])");
    assert_eq!(show(" colour NOT  IN [green, blue] "), "NOT ({colour} IN[{green}, {blue}, ])");
    assert_eq!(show("colour IN ['dark green', \"IN\"]"), "{colour} IN[{dark green}, {IN}, ]");
}

#[test]
fn precedence_not_then_and_then_or() {
    assert_eq!(show("a = 1 OR b = 2 AND c = 3"), "OR[{a} = {1}, AND[{b} = {2}, {c} = {3}, ], ]");
    assert_eq!(show("a = 1 AND b = 2 OR c = 3"), "OR[AND[{a} = {1}, {b} = {2}, ], {c} = {3}, ]");
    assert_eq!(show("NOT a = 1 AND b = 2"), "AND[NOT ({a} = {1}), {b} = {2}, ]");
    assert_eq!(show("NOT a = 1 OR b = 2"), "OR[NOT ({a} = {1}), {b} = {2}, ]");
    assert_eq!(
        show("a = 1 AND b != 2 OR c > 3 OR d = 4 OR d = 5 AND e = 7"),
        "OR[AND[{a} = {1}, {b} != {2}, ], {c} > {3}, {d} = {4}, AND[{d} = {5}, {e} = {7}, ], ]"
    );
    assert_eq!(show("NOT subscribers 100 TO 1000"), "NOT ({subscribers} {100} TO {1000})");
}

#[test]
fn parentheses_and_negations() {
    assert_eq!(show("a = 1 AND (b = 2 OR c = 3)"), "AND[{a} = {1}, OR[{b} = {2}, {c} = {3}, ], ]");
    assert_eq!(
        show(" (colour = green OR colour = red) "),
        "OR[{colour} = {green}, {colour} = {red}, ]"
    );
    assert_eq!(
        show("x = 1 OR NOT (colour IN [green, blue]  OR color = green) "),
        "OR[{x} = {1}, NOT (OR[{colour} IN[{green}, {blue}, ], {color} = {green}, ]), ]"
    );
    assert_eq!(show("NOT NOT NOT NOT x = 5"), "{x} = {5}");
    assert_eq!(show("NOT NOT (NOT NOT x = 5)"), "{x} = {5}");
    assert_eq!(show("NOT subscribers NOT EXISTS"), "{subscribers} EXISTS");
    assert_eq!(show("NOT subscribers IS NOT NULL"), "{subscribers} IS NULL");
    let nested = format!("{}x = 1{}", "(".repeat(49), ")".repeat(49));
    assert_eq!(show(&nested), "{x} = {1}");
    assert_eq!(show(&format!("{}x = 1", "NOT ".repeat(197))), "NOT ({x} = {1})");
}

#[test]
fn quoting_escapes_and_keywords_as_names() {
    assert_eq!(show("channel = 'Mister Mv'"), "{channel} = {Mister Mv}");
    assert_eq!(show("channel = \"Mister Mv\""), "{channel} = {Mister Mv}");
    assert_eq!(show("'dog race' = Borzoi"), "{dog race} = {Borzoi}");
    assert_eq!(show("\"dog race\" = 'Bernese Mountain'"), "{dog race} = {Bernese Mountain}");
    assert_eq!(show(r"title = 'foo\\'"), r"{title} = {foo\}");
    assert_eq!(show(r#"title = "I'm \"super\" tamo""#), r#"{title} = {I'm "super" tamo}"#);
    assert_eq!(show(r"title = 'I\'m'"), "{title} = {I'm}");
    assert_eq!(show(r#"title = 'foo\x20\n\t\"\'"'"#), "{title} = {foo \n\t\"'\"}");
    assert_eq!(show("title = ''"), "{title} = {}");
    assert_eq!(
        show(r#"NOT "OR" EXISTS AND "EXISTS" NOT EXISTS"#),
        "AND[NOT ({OR} EXISTS), NOT ({EXISTS} EXISTS), ]"
    );
    assert_eq!(show("product.brand = acme"), "{product.brand} = {acme}");
    assert_eq!(show("ORder = 1 AND NOTE = 2"), "AND[{ORder} = {1}, {NOTE} = {2}, ]");
    assert_eq!(show("café = crème"), "{café} = {crème}");
}

#[test]
fn geo_rules() {
    assert_eq!(show("_geoRadius(12, 13, 14)"), "_geoRadius({12}, {13}, {14})");
    assert_eq!(show("_geoRadius(12,13,14)"), "_geoRadius({12}, {13}, {14})");
    assert_eq!(show("NOT _geoRadius(12.5, -13, 1e3)"), "NOT (_geoRadius({12.5}, {-13}, {1000}))");
    assert_eq!(
        show("_geoBoundingBox([12, 13], [11, 15])"),
        "_geoBoundingBox([{12}, {13}], [{11}, {15}])"
    );
    assert_eq!(
        show("_geoBoundingBox([12,13],[11,15])"),
        "_geoBoundingBox([{12}, {13}], [{11}, {15}])"
    );
    assert_eq!(
        show("(a = 1 OR b > 2) AND _geoRadius(12, 13, 14)"),
        "AND[OR[{a} = {1}, {b} > {2}, ], _geoRadius({12}, {13}, {14}), ]"
    );
    assert_eq!(
        show("_geoRadius(1, 2, 3) AND x EXISTS"),
        "AND[_geoRadius({1}, {2}, {3}), {x} EXISTS, ]"
    );
}

#[test]
fn empty_filters_are_none() {
    for value in
        [json!(null), json!(""), json!("   \n "), json!([]), json!([""]), json!([[], [" "]])]
    {
        assert_eq!(parse_filter(&value), Ok(None), "{value}");
    }
}

#[test]
fn array_form_ands_outer_and_ors_inner_elements() {
    let parsed = parse_filter(&json!(["a = 1", ["b = 2", "c = 3"], "", [], ["d = 4"]]));
    let shown = parsed.map(|filter| filter.map(|f| f.to_string()));
    assert_eq!(shown, Ok(Some("AND[{a} = {1}, OR[{b} = {2}, {c} = {3}, ], {d} = {4}, ]".into())));
    let single = parse_filter(&json!([["a = 1 OR b = 2"]])).map(|f| f.map(|f| f.to_string()));
    assert_eq!(single, Ok(Some("OR[{a} = {1}, {b} = {2}, ]".into())));
}

#[test]
fn attributes_lists_each_name_once() {
    let filter = parse(
        "brand = a AND (price > 3 OR brand IN [b]) AND NOT _geoRadius(1, 2, 3) AND \
        specs.ram EXISTS",
    );
    assert_eq!(filter.attributes(), ["brand", "price", "_geo", "specs.ram"]);
    assert_eq!(parse("_geoBoundingBox([1, 2], [0, 1])").attributes(), ["_geo"]);
}

#[test]
fn unescape_follows_the_unescaper_crate() {
    assert_eq!(unescape(r"a\nb\t\\\/\'\x41\u0042\u{43}\101\7"), Ok("a\nb\t\\/'ABCA\u{7}".into()));
    assert_eq!(unescape(r"\q"), Err(Unescape::Char));
    assert_eq!(unescape(r"\xZZ"), Err(Unescape::Number));
    assert_eq!(unescape(r"\u{110000}"), Err(Unescape::Char));
    assert_eq!(unescape(r"\x4"), Err(Unescape::Incomplete));
    assert_eq!(unescape("\\"), Err(Unescape::Incomplete));
    assert_eq!(unescape("plain"), Ok("plain".into()));
}
