//! One module per config section. Each section owns its defaults and the checks that need only
//! its own values; checks that span sections live in `crate::validate`.

mod cdc;
mod health;
mod idempotency;
mod ilm;
mod leader;
mod metrics;
mod multi_search;
mod nodes;
mod plugins;
mod rebalancer;
mod scatter;
mod search_ui;
mod server;
mod session_pinning;
mod shadow;
mod task_store;
mod telemetry;
mod vector_search;
mod write_quorum;

pub use cdc::{CdcBuffer, CdcConfig, CdcSinks, NatsSink, QueueSink, WebhookSink};
pub use health::HealthConfig;
pub use idempotency::IdempotencyConfig;
pub use ilm::{IlmConfig, IlmPolicy, RolloverConditions};
pub use leader::LeaderConfig;
pub use metrics::MetricsConfig;
pub use multi_search::MultiSearchConfig;
pub use nodes::NodeConfig;
pub use plugins::{CustomPlugin, PluginsConfig};
pub use rebalancer::RebalancerConfig;
pub use scatter::{HedgingConfig, ReplicaSelection, ScatterConfig, UnavailableShardPolicy};
pub use search_ui::{RateLimitBackend, RateLimitConfig, SearchUiConfig};
pub use server::ServerConfig;
pub use session_pinning::{PinningStrategy, SessionPinningConfig};
pub use shadow::{ShadowConfig, ShadowTarget};
pub use task_store::{TaskStoreBackend, TaskStoreConfig};
pub use telemetry::{LogFormat, OtlpProtocol, TelemetryConfig};
pub use vector_search::{FusionMethod, VectorSearchConfig};
pub use write_quorum::WriteQuorum;
