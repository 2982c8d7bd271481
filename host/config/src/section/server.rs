//! `server`: where and how the gateway listens.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// The `server` section: the client-facing HTTP listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Default `0.0.0.0`.
    pub bind: IpAddr,
    /// Port to listen on. Default `7700`, Meilisearch's, so SDKs need only the host changed.
    pub port: u16,
    /// Largest request body accepted, in bytes. Default 100 MB, as Meilisearch.
    pub max_body_bytes: u64,
    /// Requests served at once; more wait up to `queue_timeout`. `/health` and `/_miroir/ready`
    /// are never counted. Default `1024`.
    pub max_concurrent_requests: u32,
    /// How long a request waits for one of the `max_concurrent_requests` slots before it is
    /// refused with 503 `miroir_overloaded`. Default `"2s"`.
    pub queue_timeout: HumanDuration,
    /// Time a client has to send a request's body; a slower one gets 408
    /// `miroir_request_timeout`. Default `"30s"`.
    pub request_timeout: HumanDuration,
    /// How long a connection may stay idle between requests, or take to send a request's
    /// headers, before it is closed. Default `"60s"`.
    pub idle_timeout: HumanDuration,
    /// How long shutdown waits for in-flight requests. Default `"30s"`.
    pub shutdown_timeout: HumanDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 7700,
            max_body_bytes: 100_000_000,
            max_concurrent_requests: 1024,
            queue_timeout: HumanDuration::from_secs(2),
            request_timeout: HumanDuration::from_secs(30),
            idle_timeout: HumanDuration::from_secs(60),
            shutdown_timeout: HumanDuration::from_secs(30),
        }
    }
}

impl ServerConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.port == 0 {
            report.push(
                "server.port",
                "must be between 1 and 65535, got 0",
                "choose a fixed port, e.g. 7700",
            );
        }
        if self.max_body_bytes == 0 {
            report.push(
                "server.max_body_bytes",
                "must be greater than 0",
                "set the largest body to accept, e.g. 100000000 (100 MB)",
            );
        }
        if self.max_concurrent_requests == 0 {
            report.push(
                "server.max_concurrent_requests",
                "must be greater than 0",
                "set how many requests may run at once, e.g. 1024",
            );
        }
        for (key, value) in [
            ("server.queue_timeout", self.queue_timeout),
            ("server.request_timeout", self.request_timeout),
            ("server.idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                report.push(key, "must be longer than 0s", "write a duration such as \"30s\"");
            }
        }
    }
}
