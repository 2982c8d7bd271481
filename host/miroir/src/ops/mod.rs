//! Operations commands: talk to a running Miroir over HTTP with the admin key, and print for a
//! terminal (tables, progress bars).

mod backup;
mod fleet;
mod status;
mod tasks;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

pub use backup::{export, import};
pub use fleet::{nodes, rebalance, NodesCommand, RebalanceCommand};
pub use status::status;
pub use tasks::tasks;

/// Where the running Miroir is and the key to use.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Miroir's address.
    #[arg(long, env = "MIROIR_URL", default_value = "http://127.0.0.1:7700", global = true)]
    pub url: String,
    /// The admin API key (or the master key when no admin key is set).
    #[arg(long, env = "MIROIR_ADMIN_API_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
}

/// `miroir tasks ...`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// One task, as JSON.
    Get {
        /// The task uid.
        uid: u64,
    },
    /// Recent tasks, newest first, as a table.
    List {
        /// Only tasks with these statuses (comma-separated: enqueued,processing,succeeded,...).
        #[arg(long)]
        status: Option<String>,
        /// Only tasks of these indexes (comma-separated).
        #[arg(long)]
        index: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// An HTTP client for one running Miroir.
struct Client {
    http: reqwest::blocking::Client,
    base: String,
    key: Option<String>,
}

/// A failed command: the message printed before exiting with status 1.
#[derive(Debug)]
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure(error.to_string())
    }
}

impl Client {
    fn new(target: &Target) -> Result<Self, Failure> {
        let key = target.key.clone().or_else(|| std::env::var("MIROIR_MASTER_KEY").ok());
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(None)
            .build()?;
        Ok(Client { http, base: target.url.trim_end_matches('/').to_owned(), key })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// `GET path` as JSON; a Meilisearch error becomes a [`Failure`] with its message.
    fn get_json(&self, path: &str) -> Result<Value, Failure> {
        json_answer(self.request(reqwest::Method::GET, path).send()?)
    }

    /// Like [`Client::get_json`], but an error answer is returned with its status.
    fn get_any(&self, path: &str) -> Result<(u16, Value), Failure> {
        let response = self.request(reqwest::Method::GET, path).send()?;
        let status = response.status().as_u16();
        Ok((status, response.json().unwrap_or(Value::Null)))
    }
}

/// The JSON of a successful answer, or the error's message.
fn json_answer(response: reqwest::blocking::Response) -> Result<Value, Failure> {
    let status = response.status();
    let body: Value = response.json().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(body)
    } else {
        let message = body["message"].as_str().map_or_else(|| body.to_string(), str::to_owned);
        let code = body["code"].as_str().unwrap_or("error");
        Err(Failure(format!("{status}: {message} ({code})")))
    }
}

/// Runs a command body, printing a failure to stderr.
fn run(body: impl FnOnce() -> Result<(), Failure>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
