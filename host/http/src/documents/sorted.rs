//! The order of a documents browse with `sort` (`GET/POST .../documents`), so that the pages of
//! every shard, each sorted by its node, merge into the page one node holding every document
//! gives.
//!
//! Meilisearch orders sort values this way: numbers before strings, strings as if lowercase,
//! documents without the field last whatever the direction; an array sorts by its smallest value
//! ascending and its largest descending. Documents that tie keep the order of their shards (one
//! node's internal order cannot be reproduced across shards; this one is deterministic).

use std::cmp::Ordering;

use serde_json::Value;

/// One `field:asc|desc` expression of the client's `sort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortField {
    /// The attribute, dotted for a nested one.
    pub name: String,
    pub asc: bool,
}

/// The client's `sort` as Miroir can merge it; `None` when an expression is not a plain
/// `field:asc|desc` (the nodes then report it, or the geo sort is left to one shard's order).
pub fn parse_sort(sort: &[String]) -> Option<Vec<SortField>> {
    sort.iter()
        .map(|text| {
            let (name, dir) = text.trim().rsplit_once(':')?;
            let asc = match dir {
                "asc" => true,
                "desc" => false,
                _ => return None,
            };
            let name = name.trim();
            (!name.is_empty() && !name.starts_with("_geo"))
                .then(|| SortField { name: name.to_owned(), asc })
        })
        .collect()
}

/// A document's value for one sort field, comparable across documents.
#[derive(Debug, Clone, PartialEq)]
enum SortValue {
    Number(f64),
    Text(String),
    Missing,
}

fn field_values<'d>(document: &'d Value, name: &str, out: &mut Vec<&'d Value>) {
    if let Some(v) = document.get(name) {
        out.push(v);
        return;
    }
    if let Some((head, rest)) = name.split_once('.') {
        match document.get(head) {
            Some(Value::Array(items)) => items.iter().for_each(|i| field_values(i, rest, out)),
            Some(inner) => field_values(inner, rest, out),
            None => {}
        }
    }
}

fn collect(value: &Value, out: &mut Vec<SortValue>) {
    match value {
        Value::Number(n) => out.extend(n.as_f64().map(SortValue::Number)),
        Value::String(s) => out.push(SortValue::Text(s.to_lowercase())),
        Value::Bool(b) => out.push(SortValue::Text(b.to_string())),
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

/// Ascending order of two present values: numbers first, then strings.
fn ascending(a: &SortValue, b: &SortValue) -> Ordering {
    match (a, b) {
        (SortValue::Number(x), SortValue::Number(y)) => x.total_cmp(y),
        (SortValue::Number(_), _) => Ordering::Less,
        (_, SortValue::Number(_)) => Ordering::Greater,
        (SortValue::Text(x), SortValue::Text(y)) => x.cmp(y),
        (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
        (SortValue::Missing, _) => Ordering::Greater,
        (_, SortValue::Missing) => Ordering::Less,
    }
}

fn value_of(document: &Value, field: &SortField) -> SortValue {
    let mut found = Vec::new();
    field_values(document, &field.name, &mut found);
    let mut values = Vec::new();
    found.into_iter().for_each(|v| collect(v, &mut values));
    let best = if field.asc { Ordering::Less } else { Ordering::Greater };
    values.into_iter().fold(SortValue::Missing, |kept, v| {
        if kept == SortValue::Missing || ascending(&v, &kept) == best {
            v
        } else {
            kept
        }
    })
}

fn compare_values(a: &SortValue, b: &SortValue, asc: bool) -> Ordering {
    match (a, b) {
        (SortValue::Missing, SortValue::Missing) => Ordering::Equal,
        (SortValue::Missing, _) => Ordering::Greater,
        (_, SortValue::Missing) => Ordering::Less,
        (SortValue::Number(_), SortValue::Text(_)) => Ordering::Less,
        (SortValue::Text(_), SortValue::Number(_)) => Ordering::Greater,
        _ if asc => ascending(a, b),
        _ => ascending(b, a),
    }
}

/// Merges the sorted pages of several shards (in shard order) into one sorted list: ties keep
/// their shard's position, then their place in that shard's page.
pub fn merge_sorted(pages: Vec<Vec<Value>>, sort: &[SortField]) -> Vec<Value> {
    let mut keyed: Vec<(Vec<SortValue>, usize, usize, Value)> = pages
        .into_iter()
        .enumerate()
        .flat_map(|(position, page)| {
            page.into_iter().enumerate().map(move |(place, doc)| (position, place, doc))
        })
        .map(|(position, place, doc)| {
            (sort.iter().map(|f| value_of(&doc, f)).collect(), position, place, doc)
        })
        .collect();
    keyed.sort_by(|a, b| {
        sort.iter()
            .zip(a.0.iter().zip(&b.0))
            .map(|(f, (x, y))| compare_values(x, y, f.asc))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    keyed.into_iter().map(|(_, _, _, doc)| doc).collect()
}

/// The `fields` a shard must return so its documents can be merged: the client's, plus each sort
/// field it leaves out (returned as the added top-level names, to strip after the merge).
pub fn fields_with_sort(fields: &[String], sort: &[SortField]) -> (Vec<String>, Vec<String>) {
    if fields.iter().any(|f| f == "*") {
        return (fields.to_vec(), Vec::new());
    }
    let mut all = fields.to_vec();
    let mut added = Vec::new();
    for field in sort {
        let top = field.name.split('.').next().unwrap_or(&field.name).to_owned();
        let covered = fields
            .iter()
            .any(|f| f == &field.name || f == &top || field.name.starts_with(&format!("{f}.")));
        if !covered && !all.contains(&field.name) {
            all.push(field.name.clone());
            if !fields.contains(&top) && !added.contains(&top) {
                added.push(top);
            }
        }
    }
    (all, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sort(list: &[&str]) -> Vec<SortField> {
        parse_sort(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid")
    }

    #[test]
    fn merged_pages_follow_the_sort_with_missing_values_last() {
        let pages = vec![
            vec![json!({"id": 1, "rank": 3}), json!({"id": 3})],
            vec![json!({"id": 2, "rank": "b"}), json!({"id": 4, "rank": 1})],
        ];
        let ids = |docs: Vec<Value>| docs.iter().map(|d| d["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(merge_sorted(pages.clone(), &sort(&["rank:asc"]))), [4, 1, 2, 3]);
        assert_eq!(ids(merge_sorted(pages, &sort(&["rank:desc"]))), [1, 4, 2, 3]);
    }

    #[test]
    fn strings_sort_as_lowercase_and_arrays_by_their_extreme() {
        let pages = vec![vec![json!({"id": 1, "t": "Beta"}), json!({"id": 2, "t": ["a", "z"]})]];
        let first = |s: &[&str]| merge_sorted(pages.clone(), &sort(s))[0]["id"].clone();
        assert_eq!(first(&["t:asc"]), 2);
        assert_eq!(first(&["t:desc"]), 2);
        assert_eq!(
            merge_sorted(
                vec![vec![json!({"t": "Beta"}), json!({"t": "alpha"})]],
                &sort(&["t:asc"])
            )[0]["t"],
            "alpha"
        );
    }

    #[test]
    fn sort_fields_the_client_leaves_out_are_fetched_then_stripped() {
        let fields = vec!["id".to_owned()];
        assert_eq!(
            fields_with_sort(&fields, &sort(&["rank:asc", "id:desc"])),
            (vec!["id".to_owned(), "rank".to_owned()], vec!["rank".to_owned()])
        );
        assert_eq!(parse_sort(&["_geoPoint(1,2):asc".to_owned()]), None);
        assert_eq!(parse_sort(&["rank".to_owned()]), None);
    }
}
