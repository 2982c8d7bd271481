//! The command line: `miroir serve`, `miroir check-config`, and the operations commands
//! ([`crate::ops`]) that talk to a running Miroir.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use miroir_config::{Config, ConfigError};

use crate::{logging, serve};

/// Exit status when the configuration is unusable.
const EXIT_BAD_CONFIG: u8 = 2;
/// Exit status when the gateway fails after its configuration was accepted.
const EXIT_FAILURE: u8 = 1;

/// Miroir: a fleet of Meilisearch nodes behind one Meilisearch API.
#[derive(Debug, Parser)]
#[command(name = "miroir", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (YAML, or TOML if it ends in .toml). Without one, defaults and
        /// MIROIR_* environment variables are used.
        #[arg(long, short, env = "MIROIR_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Load and validate a config file (with MIROIR_* variables applied), then exit:
    /// 0 when it is usable, 2 with every problem listed otherwise.
    CheckConfig {
        /// The config file to check.
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
    /// Show the fleet: nodes and their health, shard coverage per index, the leader.
    Status {
        #[command(flatten)]
        target: crate::ops::Target,
    },
    /// Read Miroir's tasks.
    Tasks {
        #[command(flatten)]
        target: crate::ops::Target,
        #[command(subcommand)]
        command: crate::ops::TasksCommand,
    },
    /// Change the fleet: list, add, drain and remove nodes.
    Nodes {
        #[command(flatten)]
        target: crate::ops::Target,
        #[command(subcommand)]
        command: crate::ops::NodesCommand,
    },
    /// Follow, pause or resume the rebalance that moves shards after a fleet change.
    Rebalance {
        #[command(flatten)]
        target: crate::ops::Target,
        #[command(subcommand)]
        command: crate::ops::RebalanceCommand,
    },
    /// Back an index up: its settings and every document, to an NDJSON file.
    Export {
        #[command(flatten)]
        target: crate::ops::Target,
        /// The index.
        index: String,
        /// The file to write (default: INDEX.ndjson).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Restore an index from a file `miroir export` wrote (or plain NDJSON documents).
    Import {
        #[command(flatten)]
        target: crate::ops::Target,
        /// The index to create and fill.
        index: String,
        /// The file to read.
        file: PathBuf,
        /// Documents per write.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
}

/// `miroir check-config <file>`.
pub fn check_config(path: &Path) -> ExitCode {
    match load(Some(path)) {
        Ok(config) => {
            println!("config OK: {}", config.summary());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `miroir serve [--config <file>]`.
pub fn serve(path: Option<&Path>) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let export = match logging::init(&config.telemetry) {
        Ok(export) => export,
        Err(error) => {
            eprintln!("error: cannot set up logging: {error:#}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let code = match serve::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    };
    if let Some(export) = export {
        export.shutdown();
    }
    logging::flush();
    code
}

/// Loads and validates the configuration, printing every problem to stderr when there are any.
fn load(path: Option<&Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|error| {
        match (&error, path) {
            (ConfigError::Invalid(_), Some(path)) => {
                eprintln!("error: {}: {error}", path.display())
            }
            _ => eprintln!("error: {error}"),
        }
        ExitCode::from(EXIT_BAD_CONFIG)
    })
}
