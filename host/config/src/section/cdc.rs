//! `cdc`: the change-data-capture plugin.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::validate::check_url;
use crate::HumanDuration;

/// A webhook receiving batches of change events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSink {
    /// Where events are POSTed. Required.
    pub url: String,
    /// Events per request. Default `100`.
    #[serde(default = "WebhookSink::default_batch_size")]
    pub batch_size: u32,
    /// Retries with backoff before an event batch goes back to the buffer. Default `5`.
    #[serde(default = "WebhookSink::default_max_retries")]
    pub max_retries: u32,
    /// Time limit of one request. Default `"5s"`.
    #[serde(default = "WebhookSink::default_timeout")]
    pub timeout: HumanDuration,
}

impl WebhookSink {
    fn default_batch_size() -> u32 {
        100
    }

    fn default_max_retries() -> u32 {
        5
    }

    fn default_timeout() -> HumanDuration {
        HumanDuration::from_secs(5)
    }
}

/// The internal queue read by long-poll at `GET /_miroir/changes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSink {
    /// Whether the queue is kept. Default `true`.
    pub enabled: bool,
}

impl Default for QueueSink {
    fn default() -> Self {
        QueueSink { enabled: true }
    }
}

/// Where change events go.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdcSinks {
    /// A webhook. Default: none.
    pub webhook: Option<WebhookSink>,
    /// The internal queue. Default: enabled.
    pub queue: QueueSink,
}

/// How many undelivered events are held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdcBuffer {
    /// Events held in memory before spilling. Default `10000`.
    pub memory_events: u32,
    /// Events held in the task store after memory is full; past that, events are dropped and
    /// counted. Default `1000000`.
    pub store_events: u64,
}

impl Default for CdcBuffer {
    fn default() -> Self {
        CdcBuffer { memory_events: 10_000, store_events: 1_000_000 }
    }
}

/// The `cdc` section. Enabling it loads `<plugins.dir>/cdc.wasm`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdcConfig {
    /// Whether the plugin is loaded. Default `false`.
    pub enabled: bool,
    /// Where events go.
    pub sinks: CdcSinks,
    /// Bounds on undelivered events.
    pub buffer: CdcBuffer,
}

impl CdcConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if !self.enabled {
            return;
        }
        if self.sinks.webhook.is_none() && !self.sinks.queue.enabled {
            report.push(
                "cdc.sinks",
                "change capture is enabled but every sink is off",
                "set cdc.sinks.webhook.url or cdc.sinks.queue.enabled: true, or cdc.enabled: false",
            );
        }
        if let Some(webhook) = &self.sinks.webhook {
            check_url(report, "cdc.sinks.webhook.url", &webhook.url, &["http", "https"]);
            if webhook.batch_size == 0 {
                report.push("cdc.sinks.webhook.batch_size", "must be at least 1", "e.g. 100");
            }
            if webhook.timeout.is_zero() {
                report.push("cdc.sinks.webhook.timeout", "must be longer than 0s", "e.g. \"5s\"");
            }
        }
        if self.buffer.memory_events == 0 {
            report.push("cdc.buffer.memory_events", "must be at least 1", "e.g. 10000");
        }
    }
}
