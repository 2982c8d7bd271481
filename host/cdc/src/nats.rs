//! The NATS sink: each event is a message on `<subject_prefix>.<index>` with the header
//! `Nats-Msg-Id: <event_id>`. When the server offers JetStream, a stream capturing
//! `<subject_prefix>.>` is created if absent and every publish waits for its acknowledgement
//! (JetStream drops a re-sent `Nats-Msg-Id` within its duplicate window); otherwise messages
//! are published on core NATS and flushed.

use async_nats::jetstream;
use async_trait::async_trait;
use bytes::Bytes;
use miroir_config::NatsSink;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::sink::Sink;

/// Events per delivery round.
pub(crate) const BATCH: u32 = 256;
/// Doublings of the retry delay (100 ms to 3.2 s).
pub(crate) const MAX_RETRIES: u32 = 5;

enum Connection {
    JetStream(jetstream::Context),
    Core(async_nats::Client),
}

pub(crate) struct Nats {
    config: NatsSink,
    connection: Mutex<Option<Connection>>,
}

impl Nats {
    pub(crate) fn new(config: &NatsSink) -> Self {
        Nats { config: config.clone(), connection: Mutex::new(None) }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let client = async_nats::connect(&self.config.url)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.config.url))?;
        if !client.server_info().jetstream {
            tracing::info!(url = %self.config.url, "NATS server without JetStream: publishing on core NATS");
            return Ok(Connection::Core(client));
        }
        let context = jetstream::new(client);
        let subjects = vec![format!("{}.>", self.config.subject_prefix)];
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: self.config.stream.clone(),
                subjects,
                ..Default::default()
            })
            .await
            .map_err(|e| {
                format!("cannot create the JetStream stream {}: {e}", self.config.stream)
            })?;
        tracing::info!(url = %self.config.url, stream = %self.config.stream, "publishing change events to JetStream");
        Ok(Connection::JetStream(context))
    }
}

#[async_trait]
impl Sink for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn deliver(&self, index: &str, events: &[Value]) -> Result<(), String> {
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            *connection = Some(self.connect().await?);
        }
        let subject = format!("{}.{index}", self.config.subject_prefix);
        let result = publish(connection.as_ref().expect("connected above"), &subject, events).await;
        if result.is_err() {
            // Connect again next time (the stream may have been deleted, the server replaced).
            *connection = None;
        }
        result
    }
}

async fn publish(connection: &Connection, subject: &str, events: &[Value]) -> Result<(), String> {
    let subject = subject.to_owned();
    match connection {
        Connection::JetStream(context) => {
            let mut acks = Vec::with_capacity(events.len());
            for event in events {
                let ack = context
                    .publish_with_headers(subject.clone(), headers(event), payload(event))
                    .await
                    .map_err(|e| e.to_string())?;
                acks.push(ack);
            }
            let mut result = Ok(());
            for ack in acks {
                if let Err(e) = ack.await {
                    result = Err(e.to_string());
                }
            }
            result
        }
        Connection::Core(client) => {
            for event in events {
                client
                    .publish_with_headers(subject.clone(), headers(event), payload(event))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            client.flush().await.map_err(|e| e.to_string())
        }
    }
}

fn headers(event: &Value) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(id) = event["event_id"].as_str() {
        headers.insert("Nats-Msg-Id", id);
    }
    headers
}

fn payload(event: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(event).unwrap_or_default())
}
