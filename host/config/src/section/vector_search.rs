//! `vector_search`: the vector and hybrid search plugin.

use serde::{Deserialize, Serialize};

use crate::error::Report;

/// How per-shard hybrid results are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FusionMethod {
    /// By the score Meilisearch returns for hybrid results (default).
    Score,
    /// By reciprocal rank fusion.
    Rrf,
}

/// The `vector_search` section. Enabling it loads `<plugins.dir>/vector_search.wasm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VectorSearchConfig {
    /// Whether the plugin is loaded. Default `false`.
    pub enabled: bool,
    /// Each shard is asked for `limit × over_fetch_factor` hits. Default `3`.
    pub over_fetch_factor: u32,
    /// `score` (default) or `rrf`.
    pub fusion: FusionMethod,
    /// The `k` constant of reciprocal rank fusion. Default `60`.
    pub rrf_k: u32,
}

impl Default for VectorSearchConfig {
    fn default() -> Self {
        VectorSearchConfig {
            enabled: false,
            over_fetch_factor: 3,
            fusion: FusionMethod::Score,
            rrf_k: 60,
        }
    }
}

impl VectorSearchConfig {
    pub(crate) fn validate(&self, report: &mut Report) {
        if !self.enabled {
            return;
        }
        if !(1..=100).contains(&self.over_fetch_factor) {
            report.push(
                "vector_search.over_fetch_factor",
                format!("{} is not between 1 and 100", self.over_fetch_factor),
                "1 asks each shard for exactly `limit` hits; 3 is a good start",
            );
        }
        if self.fusion == FusionMethod::Rrf && self.rrf_k == 0 {
            report.push("vector_search.rrf_k", "must be at least 1", "60 is the usual constant");
        }
    }
}
