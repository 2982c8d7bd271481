//! `miroir status`: topology, node health, shard coverage and leader.

use std::process::ExitCode;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

use super::{run, Client, Failure, Target};

/// Prints the fleet's state; exits 1 when Miroir cannot be reached.
pub fn status(target: &Target) -> ExitCode {
    run(|| {
        let client = Client::new(target)?;
        let topology = client.get_json("/_miroir/topology")?;
        let leader = client.get_json("/_miroir/leader")?;
        let (ready_status, ready) = client.get_any("/_miroir/ready")?;
        let shards = client.get_json("/_miroir/shards")?;
        print!("{}", render(&topology, &leader, ready_status, &ready, &shards));
        Ok::<(), Failure>(())
    })
}

/// The report, as text.
fn render(
    topology: &Value,
    leader: &Value,
    ready_status: u16,
    ready: &Value,
    shards: &Value,
) -> String {
    let mut out = String::new();
    let readiness = if ready_status == 200 {
        "ready".to_owned()
    } else {
        format!("NOT READY ({})", ready["reason"].as_str().unwrap_or("unknown"))
    };
    out.push_str(&format!(
        "Miroir {}: leader {}, replication factor {}, {} shards per new index\n\n",
        readiness,
        leader["leader"].as_str().unwrap_or("none"),
        topology["replicationFactor"],
        topology["defaultShards"],
    ));
    let mut nodes = Table::new();
    nodes.load_preset(UTF8_FULL_CONDENSED).set_header(["Group", "Node", "Address", "Health"]);
    for group in topology["groups"].as_array().into_iter().flatten() {
        for node in group["nodes"].as_array().into_iter().flatten() {
            nodes.add_row([
                text(&group["id"]),
                text(&node["id"]),
                text(&node["address"]),
                text(&node["health"]),
            ]);
        }
    }
    out.push_str(&format!("{nodes}\n\n"));
    let mut indexes = Table::new();
    indexes.load_preset(UTF8_FULL_CONDENSED).set_header(["Index", "Shards", "Coverage"]);
    if let Value::Object(map) = shards {
        for (uid, index) in map {
            let count = index["shardCount"].as_u64().unwrap_or(0);
            let unavailable = index["unavailableShards"].as_array().map_or(0, Vec::len) as u64;
            let coverage = if unavailable == 0 {
                "100%".to_owned()
            } else {
                format!("{} of {count} shards unavailable", unavailable)
            };
            indexes.add_row([uid.clone(), count.to_string(), coverage]);
        }
    }
    out.push_str(&format!("{indexes}\n"));
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}
