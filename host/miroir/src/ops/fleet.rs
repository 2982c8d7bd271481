//! `miroir nodes list|add|drain|remove` and `miroir rebalance status|pause|resume`: the fleet
//! admin routes from a terminal.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::{json_answer, run, Client, Failure, Target};

/// `miroir nodes ...`.
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// Every node with its state and health.
    List,
    /// Add a node; a rebalance copies it its shards.
    Add {
        /// The node id (never reused).
        id: String,
        /// Its base URL, e.g. http://meili-3:7700.
        address: String,
        /// Its replica group (default: the fleet's first group).
        #[arg(long)]
        group: Option<String>,
    },
    /// Move every shard off a node.
    Drain {
        /// The node id.
        id: String,
    },
    /// Remove a drained node (or, with --force, a dead one).
    Remove {
        /// The node id.
        id: String,
        /// The node is dead: rebuild its shards from their other replicas, then remove it.
        #[arg(long)]
        force: bool,
    },
}

/// `miroir rebalance ...`.
#[derive(Debug, Subcommand)]
pub enum RebalanceCommand {
    /// The open run and the latest finished ones.
    Status {
        /// Show the open run as a live progress bar until it ends.
        #[arg(long)]
        watch: bool,
    },
    /// Take no new shard until resumed.
    Pause,
    /// Go on with a paused run.
    Resume,
}

/// Runs a `nodes` subcommand.
pub fn nodes(target: &Target, command: &NodesCommand) -> ExitCode {
    run(|| {
        let client = Client::new(target)?;
        let answer = match command {
            NodesCommand::List => {
                println!("{}", nodes_table(&client.get_json("/_miroir/nodes")?));
                return Ok(());
            }
            NodesCommand::Add { id, address, group } => {
                let mut body = json!({"id": id, "address": address});
                if let Some(group) = group {
                    body["replicaGroup"] = json!(group);
                }
                send(&client, reqwest::Method::POST, "/_miroir/nodes", Some(body))?
            }
            NodesCommand::Drain { id } => {
                send(&client, reqwest::Method::POST, &format!("/_miroir/nodes/{id}/drain"), None)?
            }
            NodesCommand::Remove { id, force } => {
                let path = format!("/_miroir/nodes/{id}?force={force}");
                send(&client, reqwest::Method::DELETE, &path, None)?
            }
        };
        let state = answer["state"].as_str().unwrap_or("-");
        match answer["rebalanceRun"].as_u64() {
            Some(run) => println!(
                "node {} is {state}; rebalance run {run} started (miroir rebalance status --watch)",
                answer["id"].as_str().unwrap_or("-")
            ),
            None => println!("node {} is {state}", answer["id"].as_str().unwrap_or("-")),
        }
        Ok::<(), Failure>(())
    })
}

/// Runs a `rebalance` subcommand.
pub fn rebalance(target: &Target, command: &RebalanceCommand) -> ExitCode {
    run(|| {
        let client = Client::new(target)?;
        match command {
            RebalanceCommand::Status { watch: false } => {
                println!("{}", status_text(&client.get_json("/_miroir/rebalance/status")?));
            }
            RebalanceCommand::Status { watch: true } => watch_runs(&client)?,
            RebalanceCommand::Pause => {
                let run = send(&client, reqwest::Method::POST, "/_miroir/rebalance/pause", None)?;
                println!("run {} is {}", run["id"], run["state"].as_str().unwrap_or("-"));
            }
            RebalanceCommand::Resume => {
                let run = send(&client, reqwest::Method::POST, "/_miroir/rebalance/resume", None)?;
                println!("run {} is {}", run["id"], run["state"].as_str().unwrap_or("-"));
            }
        }
        Ok::<(), Failure>(())
    })
}

/// Shows the open run as a live progress bar (shards done of total; documents, rate and ETA)
/// until no run is open, then the final status.
fn watch_runs(client: &Client) -> Result<(), Failure> {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} shards {msg}",
    ) {
        bar.set_style(style);
    }
    loop {
        let status = client.get_json("/_miroir/rebalance/status")?;
        let current = &status["current"];
        if current.is_null() {
            bar.finish_and_clear();
            println!("{}", status_text(&status));
            return Ok(());
        }
        bar.set_length(current["shardsTotal"].as_u64().unwrap_or(0));
        bar.set_position(current["shardsDone"].as_u64().unwrap_or(0));
        let eta = current["etaSeconds"].as_u64().map(|s| format!(", ETA {s}s")).unwrap_or_default();
        bar.set_message(format!(
            "run {} {}: {} documents, {} docs/s{eta}",
            current["id"],
            current["state"].as_str().unwrap_or("-"),
            current["documentsCopied"],
            current["documentsPerSecond"],
        ));
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn send(
    client: &Client,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Failure> {
    let mut request = client.request(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json_answer(request.send()?)
}

fn nodes_table(fleet: &Value) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["Node", "Group", "State", "Health", "Address"]);
    for node in fleet["nodes"].as_array().into_iter().flatten() {
        let cell = |key: &str| node[key].as_str().unwrap_or("-").to_owned();
        table.add_row([
            cell("id"),
            cell("replicaGroup"),
            cell("state"),
            cell("health"),
            cell("address"),
        ]);
    }
    table
}

/// One line per run: the open one first, then up to five finished ones.
fn status_text(status: &Value) -> String {
    let line = |run: &Value| {
        let eta = run["etaSeconds"].as_u64().map(|s| format!(", ETA {s}s")).unwrap_or_default();
        format!(
            "run {} ({}): {}, {}/{} shards, {} documents copied, {} docs/s{eta}",
            run["id"],
            run["reason"].as_str().unwrap_or("-"),
            run["state"].as_str().unwrap_or("-"),
            run["shardsDone"],
            run["shardsTotal"],
            run["documentsCopied"],
            run["documentsPerSecond"],
        )
    };
    let mut lines = Vec::new();
    match status.get("current").filter(|c| !c.is_null()) {
        Some(current) => lines.push(line(current)),
        None => lines.push("no rebalance running".to_owned()),
    }
    lines.extend(status["runs"].as_array().into_iter().flatten().take(5).map(line));
    lines.join("\n")
}
