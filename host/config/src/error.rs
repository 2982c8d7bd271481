//! What goes wrong when loading a configuration, with the key path of every problem.

use std::fmt;
use std::path::PathBuf;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path of the offending value, e.g. `server.port` or `nodes[2].replica_group`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub hint: String,
    /// Where the value came from (`file miroir.yaml`, `environment variable MIROIR_SERVER__PORT`),
    /// when known.
    pub origin: Option<String>,
}

impl Problem {
    /// A problem at `path` with a `message` and a `hint`.
    pub fn new(
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Problem { path: path.into(), message: message.into(), hint: hint.into(), origin: None }
    }

    /// The same problem, saying where the value came from.
    pub fn with_origin(mut self, origin: Option<String>) -> Self {
        self.origin = origin;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n    hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read or parsed at all.
    #[error("cannot use config file `{}`: {reason}", path.display())]
    File {
        /// The file given with `--config`.
        path: PathBuf,
        /// What went wrong, e.g. a YAML syntax error.
        reason: String,
    },
    /// The configuration was read but has problems; every one is listed.
    #[error("{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, when the configuration was readable; empty for [`ConfigError::File`].
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::File { .. } => &[],
            ConfigError::Invalid(problems) => problems,
        }
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "the configuration has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Collects problems while validating, so that every one is reported, not just the first.
#[derive(Debug, Default)]
pub(crate) struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// Records a problem at `path`.
    pub(crate) fn push(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.problems.push(Problem::new(path, message, hint));
    }

    /// How many problems were found so far.
    pub(crate) fn len(&self) -> usize {
        self.problems.len()
    }

    /// The problems found so far.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}
