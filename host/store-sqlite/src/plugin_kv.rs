//! Plugin key-value data, keyed by (plugin, key).

use async_trait::async_trait;
use miroir_store::{PluginKv, StoreResult};
use rusqlite::{params, OptionalExtension};

use crate::error::sql_err;
use crate::SqliteStore;

#[async_trait]
impl PluginKv for SqliteStore {
    async fn plugin_get(&self, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.call("plugin_get", move |conn| {
            conn.query_row(
                "SELECT value FROM plugin_kv WHERE plugin = ?1 AND key = ?2",
                params![plugin, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err)
        })
        .await
    }

    async fn plugin_put(&self, plugin: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        let (plugin, key, value) = (plugin.to_owned(), key.to_owned(), value.to_vec());
        self.call("plugin_put", move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3)",
                params![plugin, key, value],
            )
            .map_err(sql_err)?;
            Ok(())
        })
        .await
    }

    async fn plugin_delete(&self, plugin: &str, key: &str) -> StoreResult<bool> {
        let (plugin, key) = (plugin.to_owned(), key.to_owned());
        self.call("plugin_delete", move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM plugin_kv WHERE plugin = ?1 AND key = ?2",
                    params![plugin, key],
                )
                .map_err(sql_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn plugin_list_keys(&self, plugin: &str, prefix: &str) -> StoreResult<Vec<String>> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        self.call("plugin_list_keys", move |conn| {
            // substr() rather than LIKE, so `%` and `_` in the prefix are plain characters.
            let mut st = conn
                .prepare(
                    "SELECT key FROM plugin_kv
                     WHERE plugin = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
                )
                .map_err(sql_err)?;
            let rows = st.query_map(params![plugin, prefix], |r| r.get(0)).map_err(sql_err)?;
            rows.collect::<Result<Vec<String>, _>>().map_err(sql_err)
        })
        .await
    }
}
