//! The webhook sink: each batch is one `POST` of `{"events": [...]}`; any 2xx takes it.

use async_trait::async_trait;
use miroir_config::WebhookSink;
use serde_json::{json, Value};

use crate::sink::Sink;

pub(crate) struct Webhook {
    client: reqwest::Client,
    url: String,
}

impl Webhook {
    pub(crate) fn new(config: &WebhookSink) -> Self {
        let client = reqwest::Client::builder()
            .timeout(config.timeout.get())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Webhook { client, url: config.url.clone() }
    }
}

#[async_trait]
impl Sink for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, _index: &str, events: &[Value]) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .json(&json!({ "events": events }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", response.status()))
        }
    }
}
