//! `miroir export INDEX` and `miroir import INDEX FILE`: logical backups.
//!
//! The file is NDJSON: a first line `{"miroirExport": 1, "uid", "primaryKey", "settings"}`, then
//! one document per line. Import re-creates the index with its primary key, applies the settings,
//! then sends the documents in batches through the normal write path and waits for every task.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::{json_answer, run, Client, Failure, Target};

/// The format version written in the first line.
const FORMAT: u64 = 1;
/// Longest wait for one task during an import.
const TASK_WAIT: Duration = Duration::from_secs(600);

fn bar(length: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}})"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// `miroir export INDEX [--output FILE]`.
pub fn export(target: &Target, index: &str, output: Option<&Path>) -> ExitCode {
    run(|| {
        let client = Client::new(target)?;
        let description = client.get_json(&format!("/_miroir/indexes/{index}/export/settings"))?;
        let expected = client.get_json(&format!("/indexes/{index}/stats"))?["numberOfDocuments"]
            .as_u64()
            .unwrap_or(0);
        let path = output.map_or_else(|| PathBuf::from(format!("{index}.ndjson")), Path::to_owned);
        let mut file = BufWriter::new(File::create(&path)?);
        let header = json!({
            "miroirExport": FORMAT,
            "uid": description["uid"],
            "primaryKey": description["primaryKey"],
            "settings": description["settings"],
        });
        serde_json::to_writer(&mut file, &header)?;
        file.write_all(b"\n")?;

        let response = client
            .request(reqwest::Method::GET, &format!("/_miroir/indexes/{index}/documents/export"))
            .send()?;
        if !response.status().is_success() {
            return Err(json_answer(response).err().unwrap_or(Failure("export refused".into())));
        }
        let progress = bar(expected, "documents");
        let mut count: u64 = 0;
        for line in BufReader::new(response).lines() {
            let line = line.map_err(|error| {
                Failure(format!("the export stopped after {count} documents: {error}"))
            })?;
            if line.is_empty() {
                continue;
            }
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
            count += 1;
            progress.inc(1);
        }
        file.flush()?;
        progress.finish_and_clear();
        println!("exported {count} documents and the settings of `{index}` to {}", path.display());
        Ok(())
    })
}

/// `miroir import INDEX FILE [--batch-size N]`.
pub fn import(target: &Target, index: &str, file: &Path, batch_size: usize) -> ExitCode {
    run(|| {
        let client = Client::new(target)?;
        let size = std::fs::metadata(file)?.len();
        let mut lines = BufReader::new(File::open(file)?).lines();
        let first = lines.next().transpose()?.unwrap_or_default();
        let header: Value = serde_json::from_str(&first).unwrap_or(Value::Null);
        let mut pending = Vec::new();
        let mut primary_key = Value::Null;
        if header.get("miroirExport").is_some() {
            primary_key = header["primaryKey"].clone();
            create_index(&client, index, &primary_key)?;
            let settings = &header["settings"];
            if settings.is_object() {
                let answer = client
                    .request(reqwest::Method::PATCH, &format!("/indexes/{index}/settings"))
                    .json(settings)
                    .send()?;
                wait_task(&client, json_answer(answer)?)?;
            }
        } else if !first.trim().is_empty() {
            pending.push(first);
        }

        let progress = bar(size, "bytes");
        let batch_size = batch_size.max(1);
        let mut tasks = Vec::new();
        let mut sent: u64 = 0;
        let mut flush = |batch: &mut Vec<String>| -> Result<(), Failure> {
            if batch.is_empty() {
                return Ok(());
            }
            let body = batch.join("\n");
            let bytes = body.len() as u64 + 1; // the lines and their newlines, as in the file
            let mut path = format!("/indexes/{index}/documents");
            if let Some(key) = primary_key.as_str() {
                path.push_str(&format!("?primaryKey={key}"));
            }
            let answer = client
                .request(reqwest::Method::POST, &path)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()?;
            tasks.push(json_answer(answer)?);
            sent += batch.len() as u64;
            progress.inc(bytes);
            batch.clear();
            Ok(())
        };
        for line in lines {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            pending.push(line);
            if pending.len() >= batch_size {
                flush(&mut pending)?;
            }
        }
        flush(&mut pending)?;
        progress.finish_and_clear();
        let waiting = bar(tasks.len() as u64, "tasks");
        for task in tasks {
            wait_task(&client, task)?;
            waiting.inc(1);
        }
        waiting.finish_and_clear();
        println!("imported {sent} documents into `{index}`");
        Ok(())
    })
}

/// Creates the index (an existing one is kept) and waits for it.
fn create_index(client: &Client, index: &str, primary_key: &Value) -> Result<(), Failure> {
    let answer = client
        .request(reqwest::Method::POST, "/indexes")
        .json(&json!({ "uid": index, "primaryKey": primary_key }))
        .send()?;
    let task = json_answer(answer)?;
    match wait_task(client, task) {
        Err(Failure(message)) if message.contains("index_already_exists") => Ok(()),
        other => other,
    }
}

/// Polls a task (from an answer carrying `taskUid`) until it ends; a failed task is a failure.
fn wait_task(client: &Client, answer: Value) -> Result<(), Failure> {
    let Some(uid) = answer["taskUid"].as_u64() else {
        return Err(Failure(format!("no task in the answer: {answer}")));
    };
    let deadline = Instant::now() + TASK_WAIT;
    loop {
        let task = client.get_json(&format!("/tasks/{uid}"))?;
        match task["status"].as_str() {
            Some("succeeded") => return Ok(()),
            Some("failed") | Some("canceled") => {
                return Err(Failure(format!(
                    "task {uid} {}: {} ({})",
                    task["status"].as_str().unwrap_or_default(),
                    task["error"]["message"].as_str().unwrap_or("no message"),
                    task["error"]["code"].as_str().unwrap_or("no code"),
                )))
            }
            _ if Instant::now() > deadline => {
                return Err(Failure(format!("task {uid} did not finish in {TASK_WAIT:?}")))
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
