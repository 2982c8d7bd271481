//! Plugin key-value data: one hash per plugin.

use async_trait::async_trait;
use miroir_store::{PluginKv, StoreResult};
use redis::AsyncCommands;

use crate::error::redis_err;
use crate::RedisStore;

#[async_trait]
impl PluginKv for RedisStore {
    async fn plugin_get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.run("plugin_get", async {
            self.conn().hget(self.keys.plugin(plugin), key).await.map_err(redis_err)
        })
        .await
    }

    async fn plugin_put(&self, plugin: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        self.run("plugin_put", async {
            let _: i64 =
                self.conn().hset(self.keys.plugin(plugin), key, value).await.map_err(redis_err)?;
            Ok(())
        })
        .await
    }

    async fn plugin_delete(&self, plugin: &str, key: &str) -> StoreResult<bool> {
        self.run("plugin_delete", async {
            let n: i64 =
                self.conn().hdel(self.keys.plugin(plugin), key).await.map_err(redis_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn plugin_list_keys(&self, plugin: &str, prefix: &str) -> StoreResult<Vec<String>> {
        self.run("plugin_list_keys", async {
            let keys: Vec<String> =
                self.conn().hkeys(self.keys.plugin(plugin)).await.map_err(redis_err)?;
            let mut keys: Vec<String> =
                keys.into_iter().filter(|k| k.starts_with(prefix)).collect();
            keys.sort();
            Ok(keys)
        })
        .await
    }
}
