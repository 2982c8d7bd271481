//! The `miroir` binary: parses the command line, loads the configuration and starts the gateway.
//!
//! It owns only wiring — the CLI (`cli`), logging setup (`logging`) and the HTTP server's
//! start and graceful stop (`serve`). Routing, clustering, storage and plugins belong to the
//! library crates it wires together.

mod cdc_metrics;
mod cli;
mod drift;
mod fleet_metrics;
mod gateway_metrics;
mod ilm_metrics;
mod instance;
mod listener;
mod logging;
mod metrics;
mod ops;
mod plugin_metrics;
mod plugins;
mod repair;
mod runtime;
mod serve;
mod shadow_metrics;
mod trace_export;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc, whose background threads return freed memory to the OS within seconds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::CheckConfig { config } => cli::check_config(&config),
        cli::Command::Serve { config } => cli::serve(config.as_deref()),
        cli::Command::Status { target } => ops::status(&target),
        cli::Command::Tasks { target, command } => ops::tasks(&target, &command),
        cli::Command::Nodes { target, command } => ops::nodes(&target, &command),
        cli::Command::Rebalance { target, command } => ops::rebalance(&target, &command),
        cli::Command::Export { target, index, output } => {
            ops::export(&target, &index, output.as_deref())
        }
        cli::Command::Import { target, index, file, batch_size } => {
            ops::import(&target, &index, &file, batch_size)
        }
    }
}
