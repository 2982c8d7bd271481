//! `leader`: the lease that picks the one instance running singleton work.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// The `leader` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderConfig {
    /// How long a lease lasts without renewal; a dead leader is replaced within it. Default `"30s"`.
    pub lease_ttl: HumanDuration,
    /// How often the leader renews; must be shorter than `lease_ttl`. Default `"10s"`.
    pub renew_interval: HumanDuration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            lease_ttl: HumanDuration::from_secs(30),
            renew_interval: HumanDuration::from_secs(10),
        }
    }
}

impl LeaderConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.lease_ttl.is_zero() {
            report.push("leader.lease_ttl", "must be longer than 0s", "e.g. \"30s\"");
        }
        if self.renew_interval.is_zero() {
            report.push("leader.renew_interval", "must be longer than 0s", "e.g. \"10s\"");
        } else if self.renew_interval >= self.lease_ttl {
            report.push(
                "leader.renew_interval",
                format!(
                    "{} is not shorter than leader.lease_ttl ({}): the lease would lapse between renewals",
                    self.renew_interval, self.lease_ttl
                ),
                "renew at most every third of the TTL, e.g. lease_ttl \"30s\" with renew_interval \"10s\"",
            );
        }
    }
}
