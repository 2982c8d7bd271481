//! `idempotency`: how long `Idempotency-Key`s are remembered.

use serde::{Deserialize, Serialize};

use crate::error::Report;
use crate::HumanDuration;

/// The `idempotency` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a key and its task are kept. Default `"24h"`.
    pub ttl: HumanDuration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig { ttl: HumanDuration::from_secs(24 * 3600) }
    }
}

impl IdempotencyConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.ttl.is_zero() {
            report.push("idempotency.ttl", "must be longer than 0s", "e.g. \"24h\"");
        }
    }
}
