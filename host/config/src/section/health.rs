//! `health`: how nodes are probed and when their state changes.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// The `health` section. A node goes `healthy → degraded → down` after consecutive failed probes
/// and back to `healthy` after consecutive successful ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Time between two probes of a node. Default `"5s"`.
    pub interval: HumanDuration,
    /// Time limit of one probe; must be shorter than `interval`. Default `"2s"`.
    pub timeout: HumanDuration,
    /// Consecutive failures before a node is `degraded`. Default `1`.
    pub degraded_after: u32,
    /// Consecutive failures before a node is `down`. Default `3`.
    pub down_after: u32,
    /// Consecutive successes before a node is `healthy` again. Default `2`.
    pub recover_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: HumanDuration::from_secs(5),
            timeout: HumanDuration::from_secs(2),
            degraded_after: 1,
            down_after: 3,
            recover_after: 2,
        }
    }
}

impl HealthConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.interval.is_zero() {
            report.push("health.interval", "must be longer than 0s", "probe e.g. every \"5s\"");
        }
        if self.timeout.is_zero() {
            report.push("health.timeout", "must be longer than 0s", "e.g. \"2s\"");
        } else if self.timeout >= self.interval {
            report.push(
                "health.timeout",
                format!("{} is not shorter than health.interval ({})", self.timeout, self.interval),
                "a probe must end before the next one starts: lower the timeout or raise the interval",
            );
        }
        for (key, value) in [
            ("health.degraded_after", self.degraded_after),
            ("health.down_after", self.down_after),
            ("health.recover_after", self.recover_after),
        ] {
            if value == 0 {
                report.push(key, "must be at least 1", "count consecutive probes, e.g. 3");
            }
        }
        if self.degraded_after > 0 && self.down_after > 0 && self.down_after < self.degraded_after {
            report.push(
                "health.down_after",
                format!(
                    "{} is lower than health.degraded_after ({})",
                    self.down_after, self.degraded_after
                ),
                "a node is degraded before it is down: make down_after >= degraded_after",
            );
        }
    }
}
