//! Replays the searches recorded from a real Meilisearch 1.50 (`../shared/contract`) against an
//! in-memory index built from the same dataset and settings, and compares the answers the way
//! `contract.py` does. Every search step must match, keyword scores to the last digit.

use std::path::Path;

use serde_json::{Map, Value};

use crate::index::{Document, Index};

use super::{parse_search_body, parse_search_params, search};

/// `../shared` beside the repository, or `MIROIR_SHARED_DIR`.
fn shared_dir() -> std::path::PathBuf {
    std::env::var_os("MIROIR_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn dataset() -> std::path::PathBuf {
    shared_dir().join("datasets/products-2k.json")
}

/// Marks a float literal turned into a string by [`quote_floats`].
const FLOAT_MARK: &str = "~exact-float~";

/// Wrap every float literal of a JSON text in a marked string: serde_json (without its
/// `float_roundtrip` feature) may read a float one unit in the last place off, which would
/// make recorded scores look different from exact ones. [`exact_floats`] reads them back with
/// the exact `str::parse`.
fn quote_floats(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '-' || c.is_ascii_digit() {
            let mut literal = String::from(c);
            while let Some(&n) = chars.peek() {
                if n.is_ascii_digit() || matches!(n, '.' | 'e' | 'E' | '+' | '-') {
                    literal.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if literal.contains(['.', 'e', 'E']) {
                out.push_str(&format!("\"{FLOAT_MARK}{literal}\""));
            } else {
                out.push_str(&literal);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Turn the marked strings of [`quote_floats`] back into numbers, parsed exactly.
fn exact_floats(v: Value) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix(FLOAT_MARK).map(str::parse::<f64>) {
            Some(Ok(f)) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            _ => Value::String(s),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(exact_floats).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, exact_floats(v))).collect())
        }
        other => other,
    }
}

fn read_json_lines(path: &str) -> Option<Vec<Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(&quote_floats(l)).ok())
            .map(exact_floats)
            .collect(),
    )
}

#[test]
fn recorded_floats_are_read_exactly() {
    let line = r#"{"a": 0.9848484848484849, "b": "x 1.5 \" 2.5", "c": [-3, 1e2, 12]}"#;
    let v = exact_floats(serde_json::from_str(&quote_floats(line)).unwrap_or_default());
    assert_eq!(v["a"].as_f64(), Some(0.9848484848484849));
    assert_eq!(v["b"], "x 1.5 \" 2.5");
    assert_eq!(v["c"], serde_json::json!([-3, 100.0, 12]));
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
}

/// An index holding the dataset, with `settings` (a settings PATCH body) applied field by field.
fn build_index(uid: &str, settings: Option<&Value>) -> Option<Index> {
    let text = std::fs::read_to_string(dataset()).ok()?;
    let docs: Vec<Document> = serde_json::from_str(&text).ok()?;
    let mut index = Index::new(uid, Some("id".into()), time::OffsetDateTime::UNIX_EPOCH);
    if let Some(s) = settings {
        let st = &mut index.settings;
        if let Some(v) = s.get("searchableAttributes") {
            st.searchable_attributes = strings(v);
        }
        if let Some(Value::Array(v)) = s.get("filterableAttributes") {
            st.filterable_attributes = v.clone();
        }
        if let Some(v) = s.get("sortableAttributes") {
            st.sortable_attributes = strings(v).into_iter().collect();
        }
        if let Some(v) = s.get("stopWords") {
            st.stop_words = strings(v).into_iter().collect();
        }
        if let Some(Value::Object(map)) = s.get("synonyms") {
            st.synonyms = map.iter().map(|(k, v)| (k.clone(), strings(v))).collect();
        }
        if let Some(n) = s.pointer("/faceting/maxValuesPerFacet").and_then(Value::as_u64) {
            st.faceting.max_values_per_facet = n as usize;
        }
        if let Some(n) = s.pointer("/pagination/maxTotalHits").and_then(Value::as_u64) {
            st.pagination.max_total_hits = n as usize;
        }
        if let Some(n) =
            s.pointer("/typoTolerance/minWordSizeForTypos/oneTypo").and_then(Value::as_u64)
        {
            st.typo_tolerance.min_word_size_for_typos.one_typo = n as u8;
        }
        if let Some(n) =
            s.pointer("/typoTolerance/minWordSizeForTypos/twoTypos").and_then(Value::as_u64)
        {
            st.typo_tolerance.min_word_size_for_typos.two_typos = n as u8;
        }
    }
    for doc in docs {
        index.note_fields(&doc);
        let id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        index.documents.insert(id, doc);
    }
    Some(index)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run one recorded step; `(status, body)`.
fn run(index: &Index, step: &Value) -> (u16, Value) {
    let method = step["method"].as_str().unwrap_or("");
    let path = step["path"].as_str().unwrap_or("");
    let parsed = if method == "GET" {
        let qs = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let pairs: Vec<(String, String)> = qs
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        parse_search_params(&pairs)
    } else {
        parse_search_body(&step["body"])
    };
    match parsed.and_then(|q| search(index, &q)) {
        Ok(mut body) => {
            if let Some(obj) = body.as_object_mut() {
                obj.remove("processingTimeMs");
            }
            (200, body)
        }
        Err(e) => (e.status.as_u16(), e.to_json()),
    }
}

fn first_diff(path: &str, want: &Value, got: &Value) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for k in w.keys().chain(g.keys()) {
                let p = format!("{path}.{k}");
                match (w.get(k), g.get(k)) {
                    (Some(a), Some(b)) => {
                        if let Some(d) = first_diff(&p, a, b) {
                            return Some(d);
                        }
                    }
                    (a, b) => return Some(format!("{p}: want {a:?} got {b:?}")),
                }
            }
            None
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (a, b))| first_diff(&format!("{path}[{i}]"), a, b)),
        _ if want == got => None,
        _ => Some(format!("{path}: want {} got {}", short(want), short(got))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 160 {
        format!("{}…", &s[..160])
    } else {
        s
    }
}

fn ids(hits: &[Value]) -> Vec<String> {
    hits.iter().map(|h| h["id"].to_string()).collect()
}

/// Runs of hits that may swap: equal `_rankingScore`, or equal `tie` fields.
fn runs(hits: &[Value], tie: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for h in hits {
        let key = if tie.is_empty() {
            h.get("_rankingScore").map(Value::to_string).unwrap_or_default()
        } else {
            tie.iter()
                .map(|f| h.get(f).map(Value::to_string).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        };
        match out.last_mut() {
            Some((k, members)) if *k == key && !key.is_empty() => members.push(h["id"].to_string()),
            _ => out.push((key, vec![h["id"].to_string()])),
        }
    }
    out.iter_mut().for_each(|(_, m)| m.sort());
    out
}

/// Compare like `contract.py`: `None` when equal under the step's mode.
fn compare(
    step: &Value,
    want_status: u16,
    want: &Value,
    got_status: u16,
    got: &Value,
) -> Option<String> {
    if want_status != got_status {
        return Some(format!("status {got_status} != {want_status}: {}", short(got)));
    }
    let mode = step["compare"].as_str().unwrap_or("exact");
    if want.get("code").is_some() {
        return (want["code"] != got["code"])
            .then(|| format!("code {} != {}", got["code"], want["code"]));
    }
    if mode == "status" {
        return None;
    }
    if mode == "exact" {
        return first_diff("", want, got);
    }
    let strip = |v: &Value| -> Value {
        let mut m: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
        m.remove("hits");
        Value::Object(m)
    };
    if let Some(d) = first_diff("", &strip(want), &strip(got)) {
        return Some(d);
    }
    let wh = want["hits"].as_array().cloned().unwrap_or_default();
    let gh = got["hits"].as_array().cloned().unwrap_or_default();
    if wh.len() != gh.len() {
        return Some(format!(
            "{} hits != {}: got {:?} want {:?}",
            gh.len(),
            wh.len(),
            &ids(&gh)[..gh.len().min(6)],
            &ids(&wh)[..wh.len().min(6)]
        ));
    }
    for w in &wh {
        if let Some(g) = gh.iter().find(|g| g["id"] == w["id"]) {
            if let Some(d) = first_diff(&format!("hit {}", w["id"]), w, g) {
                return Some(d);
            }
        }
    }
    let tie = strings(&step["tie"]);
    if mode == "ranked" && (!tie.is_empty() || wh.iter().any(|h| h.get("_rankingScore").is_some()))
    {
        let (rw, rg) = (runs(&wh, &tie), runs(&gh, &tie));
        let shape = |r: &[(String, Vec<String>)]| {
            r.iter().map(|(k, m)| (k.clone(), m.len())).collect::<Vec<_>>()
        };
        if shape(&rw) != shape(&rg) {
            return Some(format!(
                "ranking differs: got {:?} want {:?}",
                &ids(&gh)[..gh.len().min(8)],
                &ids(&wh)[..wh.len().min(8)]
            ));
        }
        let body = &step["body"];
        let paged = body.get("page").is_some() || body.get("hitsPerPage").is_some();
        let (cut_first, cut_last) = if paged {
            (
                body["page"].as_u64().unwrap_or(1) > 1,
                wh.len() as u64 >= body["hitsPerPage"].as_u64().unwrap_or(20),
            )
        } else {
            (
                body["offset"].as_u64().unwrap_or(0) > 0,
                wh.len() as u64 >= body["limit"].as_u64().unwrap_or(20),
            )
        };
        for (i, ((_, mw), (_, mg))) in rw.iter().zip(&rg).enumerate() {
            let cut = (i == 0 && cut_first) || (i + 1 == rw.len() && cut_last);
            if !cut && mw != mg {
                return Some(format!(
                    "ranking differs in run {i}: got {:?} want {:?}",
                    &mg[..mg.len().min(5)],
                    &mw[..mw.len().min(5)]
                ));
            }
        }
        return None;
    }
    if mode == "ranked" {
        return (ids(&wh) != ids(&gh)).then(|| {
            format!(
                "order differs: got {:?} want {:?}",
                &ids(&gh)[..gh.len().min(8)],
                &ids(&wh)[..wh.len().min(8)]
            )
        });
    }
    let (mut a, mut b) = (ids(&wh), ids(&gh));
    a.sort();
    b.sort();
    (a != b).then(|| "hit set differs".to_string())
}

/// Replay a recording's search steps before its first document write; `(name, failure)`.
fn replay(file: &str, index_settings_step: Option<&str>) -> Option<Vec<(String, Option<String>)>> {
    let records =
        read_json_lines(&shared_dir().join("contract/recordings").join(file).to_string_lossy())?;
    let settings = index_settings_step
        .and_then(|name| records.iter().find(|r| r["name"] == name))
        .map(|r| r["step"]["body"].clone());
    let mut index = build_index("products", settings.as_ref())?;
    let mut out = Vec::new();
    for rec in &records {
        let name = rec["name"].as_str().unwrap_or("").to_string();
        if name.starts_with("doc.update") || name.starts_with("doc.replace") {
            break;
        }
        let step = &rec["step"];
        let path = step["path"].as_str().unwrap_or("");
        if !path.contains("/search")
            || path.contains("facet-search")
            || !path.starts_with("/indexes/")
        {
            continue;
        }
        let uid = path.trim_start_matches("/indexes/").split('/').next().unwrap_or("");
        if uid != "products" && uid != "plain" {
            continue;
        }
        index.uid = uid.to_string();
        let want_status = rec["status"].as_u64().unwrap_or(0) as u16;
        if step["body"].is_null() && step["method"] == "POST" {
            continue; // malformed JSON: the HTTP layer's business
        }
        let (status, got) = run(&index, step);
        out.push((name, compare(step, want_status, &rec["body"], status, &got)));
    }
    Some(out)
}

fn report(file: &str, settings_step: Option<&str>) {
    assert!(dataset().exists(), "{} is missing; set MIROIR_SHARED_DIR", dataset().display());
    let results = replay(file, settings_step).expect("the recording is readable");
    let mut failed = Vec::new();
    let passed = results.iter().filter(|(_, f)| f.is_none()).count();
    for (name, failure) in &results {
        match failure {
            None => println!("ok   {name}"),
            Some(reason) => {
                println!("FAIL {name}: {reason}");
                failed.push(name.clone());
            }
        }
    }
    println!("{file}: {passed} of {} search steps reproduced", results.len());
    assert!(failed.is_empty(), "steps that differ from the recording: {failed:?}");
}

#[test]
fn products_recording_replays() {
    report("products.jsonl", Some("settings.update"));
}

#[test]
fn defaults_recording_replays() {
    report("defaults.jsonl", None);
}
