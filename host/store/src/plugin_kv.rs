//! Key-value data owned by plugins, one namespace per plugin name.

use async_trait::async_trait;

use crate::StoreResult;

/// Plugin key-value data. Plugins never see each other's keys.
#[async_trait]
pub trait PluginKv: Send + Sync {
    /// The value of `key` in `plugin`'s namespace.
    async fn plugin_get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>>;

    /// Sets `key` to `value` in `plugin`'s namespace.
    async fn plugin_put(&self, plugin: &str, key: &str, value: &[u8]) -> StoreResult<()>;

    /// Deletes `key`; returns whether it existed.
    async fn plugin_delete(&self, plugin: &str, key: &str) -> StoreResult<bool>;

    /// The keys of `plugin` that start with `prefix`, sorted.
    async fn plugin_list_keys(&self, plugin: &str, prefix: &str) -> StoreResult<Vec<String>>;
}
