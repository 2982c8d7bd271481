//! `ilm`: index lifecycle policies for time-series data (rollover and retention).

use serde::{Deserialize, Serialize};

use crate::duration::HumanDuration;
use crate::error::Report;

/// When the index being written is rolled over: the first condition met. At least one is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloverConditions {
    /// Documents in the index being written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_documents: Option<u64>,
    /// Time since the index being written was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<HumanDuration>,
    /// Size of its documents (`rawDocumentDbSize` summed over the nodes holding one copy), e.g.
    /// `5GB`, `500MiB`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<bytesize::ByteSize>,
}

impl RolloverConditions {
    fn is_empty(&self) -> bool {
        self.max_documents.is_none() && self.max_age.is_none() && self.max_size.is_none()
    }
}

/// One policy: writes to `pattern` go to its current backing index `<pattern>-NNNNNN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IlmPolicy {
    /// The name clients write to and search, e.g. `logs`; its backing indexes are `logs-000001`,
    /// `logs-000002`...
    pub pattern: String,
    /// When to start a new backing index.
    pub rollover: RolloverConditions,
    /// How long a backing index is kept after it was rolled over; none: kept for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<HumanDuration>,
}

/// The `ilm` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IlmConfig {
    /// The policies. Default: none.
    pub policies: Vec<IlmPolicy>,
    /// How often the leader checks the conditions and the retention. Default `30s`.
    pub check_interval: HumanDuration,
}

impl Default for IlmConfig {
    fn default() -> Self {
        IlmConfig { policies: Vec::new(), check_interval: HumanDuration::from_secs(30) }
    }
}

/// The longest pattern: a backing index adds 7 characters and a uid has at most 400.
const MAX_PATTERN: usize = 393;

impl IlmConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if self.check_interval.is_zero() && !self.policies.is_empty() {
            report.push("ilm.check_interval", "must be longer than 0", "e.g. 30s");
        }
        for (i, policy) in self.policies.iter().enumerate() {
            let at = |key: &str| format!("ilm.policies[{i}].{key}");
            let pattern = &policy.pattern;
            let valid = !pattern.is_empty()
                && pattern.len() <= MAX_PATTERN
                && !pattern.starts_with("_miroir")
                && pattern.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                report.push(
                    at("pattern"),
                    format!("`{pattern}` cannot name indexes"),
                    "letters, digits, `-` and `_`, e.g. logs",
                );
            } else if self.policies[..i].iter().any(|p| {
                p.pattern == *pattern
                    || backing_of(pattern, &p.pattern)
                    || backing_of(&p.pattern, pattern)
            }) {
                report.push(
                    at("pattern"),
                    format!("`{pattern}` overlaps another policy's indexes"),
                    "give every policy its own name",
                );
            }
            if policy.rollover.is_empty() {
                report.push(
                    at("rollover"),
                    "no condition: the index would never roll over",
                    "set max_documents, max_age or max_size",
                );
            }
            if policy.rollover.max_documents == Some(0) {
                report.push(at("rollover.max_documents"), "must be at least 1", "e.g. 1000000");
            }
            if policy.rollover.max_age.is_some_and(HumanDuration::is_zero) {
                report.push(at("rollover.max_age"), "must be longer than 0", "e.g. 1d");
            }
            if policy.delete_after.is_some_and(HumanDuration::is_zero) {
                report.push(at("delete_after"), "must be longer than 0", "e.g. 30d");
            }
        }
    }
}

/// Whether `name` looks like one of `pattern`'s backing indexes (`<pattern>-NNNNNN`).
fn backing_of(name: &str, pattern: &str) -> bool {
    name.strip_prefix(pattern)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
}
