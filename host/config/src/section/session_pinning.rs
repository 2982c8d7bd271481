//! `session_pinning`: read-your-writes for requests carrying `X-Miroir-Session`.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// How a pinned read waits for its session's last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinningStrategy {
    /// Wait (up to `max_wait_ms`) until the write's node tasks succeeded (default).
    Block,
    /// Send the read to the group that acknowledged the write, without waiting.
    RoutePin,
}

/// The `session_pinning` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionPinningConfig {
    /// Whether `X-Miroir-Session` is honoured. Default `true`.
    pub enabled: bool,
    /// Longest wait for a session's write, in milliseconds. Default `2000`.
    pub max_wait_ms: u64,
    /// `block` (default) or `route_pin`.
    pub strategy: PinningStrategy,
    /// How long a session is remembered after its last write. Default `"5m"`.
    pub ttl: HumanDuration,
    /// Most sessions remembered at once. Default `100000`.
    pub max_sessions: u64,
}

impl Default for SessionPinningConfig {
    fn default() -> Self {
        SessionPinningConfig {
            enabled: true,
            max_wait_ms: 2000,
            strategy: PinningStrategy::Block,
            ttl: HumanDuration::from_secs(300),
            max_sessions: 100_000,
        }
    }
}

impl SessionPinningConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if !self.enabled {
            return;
        }
        if self.ttl.is_zero() {
            report.push("session_pinning.ttl", "must be longer than 0s", "e.g. \"5m\"");
        }
        if self.max_sessions == 0 {
            report.push(
                "session_pinning.max_sessions",
                "must be at least 1 while session pinning is enabled",
                "raise it, or set session_pinning.enabled: false",
            );
        }
        if self.strategy == PinningStrategy::Block && self.max_wait_ms == 0 {
            report.push(
                "session_pinning.max_wait_ms",
                "must be greater than 0 with strategy `block`",
                "e.g. 2000, or use strategy: route_pin",
            );
        }
    }
}
