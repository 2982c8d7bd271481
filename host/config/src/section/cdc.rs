//! `cdc`: change data capture.

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

/// A NATS server receiving every event on a subject per index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSink {
    /// The server, `nats://host:4222`. Required.
    pub url: String,
    /// Events of index `movies` go to `<subject_prefix>.movies`. Default `miroir.changes`.
    #[serde(default = "NatsSink::default_subject_prefix")]
    pub subject_prefix: String,
    /// The JetStream stream capturing `<subject_prefix>.>`, created when absent, when the server
    /// offers JetStream (publishes are then acknowledged and de-duplicated by `event_id`).
    /// Default `MIROIR_CHANGES`.
    #[serde(default = "NatsSink::default_stream")]
    pub stream: String,
}

impl NatsSink {
    fn default_subject_prefix() -> String {
        "miroir.changes".into()
    }

    fn default_stream() -> String {
        "MIROIR_CHANGES".into()
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
    /// A NATS server. Default: none.
    pub nats: Option<NatsSink>,
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

/// The `cdc` section: change data capture, built into the gateway (it needs durable ordered
/// storage, waiting readers and NATS connections, none of which a sandboxed plugin has).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdcConfig {
    /// Whether client writes are recorded. Default `false`.
    pub enabled: bool,
    /// Whether events of document additions and updates carry the documents written. Default
    /// `false` (events carry the primary keys only).
    pub include_documents: bool,
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
        if self.sinks.webhook.is_none() && self.sinks.nats.is_none() && !self.sinks.queue.enabled {
            report.push(
                "cdc.sinks",
                "change capture is enabled but every sink is off",
                "set cdc.sinks.webhook.url, cdc.sinks.nats.url or cdc.sinks.queue.enabled: true, or \
                 cdc.enabled: false",
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
        if let Some(nats) = &self.sinks.nats {
            check_url(report, "cdc.sinks.nats.url", &nats.url, &["nats"]);
            let valid = |s: &str| {
                !s.is_empty()
                    && s.split('.').all(|t| {
                        !t.is_empty()
                            && !t.contains(|c: char| c.is_whitespace() || c == '*' || c == '>')
                    })
            };
            if !valid(&nats.subject_prefix) {
                report.push(
                    "cdc.sinks.nats.subject_prefix",
                    format!("`{}` is not a NATS subject", nats.subject_prefix),
                    "dot-separated words without spaces or wildcards, e.g. miroir.changes",
                );
            }
            if !valid(&nats.stream) || nats.stream.contains('.') {
                report.push(
                    "cdc.sinks.nats.stream",
                    format!("`{}` is not a JetStream stream name", nats.stream),
                    "letters, digits, `-` and `_`, e.g. MIROIR_CHANGES",
                );
            }
        }
        if self.buffer.store_events == 0 {
            report.push("cdc.buffer.store_events", "must be at least 1", "e.g. 1000000");
        }
        if self.buffer.memory_events == 0 {
            report.push("cdc.buffer.memory_events", "must be at least 1", "e.g. 10000");
        }
    }
}
