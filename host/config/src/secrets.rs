//! Keys Miroir reads from the environment only, never from the config file.

use std::fmt;

use crate::error::Report;

/// A secret value. Its `Debug` output is redacted so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for comparing or sending it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The environment variable of the client-facing master key.
pub const MASTER_KEY_ENV: &str = "MIROIR_MASTER_KEY";
/// The environment variable of the admin key for `/_miroir/*`.
pub const ADMIN_API_KEY_ENV: &str = "MIROIR_ADMIN_API_KEY";
/// The environment variable of the key Miroir sends to nodes.
pub const NODE_MASTER_KEY_ENV: &str = "MIROIR_NODE_MASTER_KEY";

/// Config keys that would hold a secret, with the variable that holds it instead.
pub(crate) const SECRET_KEYS: &[(&str, &str)] = &[
    ("master_key", MASTER_KEY_ENV),
    ("admin_api_key", ADMIN_API_KEY_ENV),
    ("node_master_key", NODE_MASTER_KEY_ENV),
];

/// The keys, as read from the environment. `None` when the variable is unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `MIROIR_MASTER_KEY`: clients authenticate with it. Unset means development mode: every
    /// route is open.
    pub master_key: Option<Secret>,
    /// `MIROIR_ADMIN_API_KEY`: guards `/_miroir/*`.
    pub admin_api_key: Option<Secret>,
    /// `MIROIR_NODE_MASTER_KEY`: what Miroir sends to the nodes.
    pub node_master_key: Option<Secret>,
}

impl Secrets {
    /// Reads the three variables from the process environment. A variable that is set but empty
    /// is a problem: it is almost always a broken secret mount, not a wish for development mode.
    pub(crate) fn from_env(report: &mut Report) -> Secrets {
        let mut read = |name: &str| match std::env::var(name) {
            Ok(value) if value.is_empty() => {
                report.push(
                    name,
                    "is set but empty",
                    format!("give {name} a value, or unset it to run without that key"),
                );
                None
            }
            Ok(value) => Some(Secret(value)),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                report.push(name, "is not valid UTF-8", "use a printable key");
                None
            }
        };
        Secrets {
            master_key: read(MASTER_KEY_ENV),
            admin_api_key: read(ADMIN_API_KEY_ENV),
            node_master_key: read(NODE_MASTER_KEY_ENV),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_secret() {
        let secrets = Secrets { master_key: Some(Secret::new("hunter2")), ..Secrets::default() };
        let debug = format!("{secrets:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(secrets.master_key.as_ref().map(Secret::expose), Some("hunter2"));
    }
}
