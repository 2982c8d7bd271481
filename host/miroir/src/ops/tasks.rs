//! `miroir tasks get|list`.

use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

use super::{run, Client, Failure, Target, TasksCommand};

/// Runs a `tasks` subcommand.
pub fn tasks(target: &Target, command: &TasksCommand) -> ExitCode {
    run(|| {
        let client = Client::new(target)?;
        match command {
            TasksCommand::Get { uid } => {
                let task = client.get_json(&format!("/tasks/{uid}"))?;
                println!("{}", serde_json::to_string_pretty(&task)?);
            }
            TasksCommand::List { status, index, limit } => {
                let mut query = form_urlencoded::Serializer::new(String::new());
                query.append_pair("limit", &limit.to_string());
                if let Some(status) = status {
                    query.append_pair("statuses", status);
                }
                if let Some(index) = index {
                    query.append_pair("indexUids", index);
                }
                let page = client.get_json(&format!("/tasks?{}", query.finish()))?;
                println!("{}", table(&page));
            }
        }
        Ok::<(), Failure>(())
    })
}

fn table(page: &Value) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["Uid", "Index", "Type", "Status", "Enqueued", "Duration", "Error"]);
    for task in page["results"].as_array().into_iter().flatten() {
        let cell = |key: &str| task[key].as_str().unwrap_or("-").to_owned();
        table.add_row([
            task["uid"].to_string(),
            cell("indexUid"),
            cell("type"),
            cell("status"),
            cell("enqueuedAt"),
            cell("duration"),
            task["error"]["code"].as_str().unwrap_or("").to_owned(),
        ]);
    }
    table
}
