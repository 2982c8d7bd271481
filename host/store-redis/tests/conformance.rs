//! The shared conformance suite on Redis (`MIROIR_TEST_REDIS_URL`): each case gets its own key
//! prefix, and the second handle is a second connection with the same prefix.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use miroir_store::conformance::StoreFactory;
use miroir_store::SessionLimits;
use miroir_store_redis::{RedisConfig, RedisStore};

struct RedisFactory {
    url: String,
}

#[async_trait]
impl StoreFactory for RedisFactory {
    type Store = RedisStore;

    async fn fresh_pair(&self, sessions: SessionLimits) -> (Arc<RedisStore>, Arc<RedisStore>) {
        let mut config = RedisConfig::new(&self.url).with_prefix(common::unique_prefix());
        config.sessions = sessions;
        let a = RedisStore::connect(config.clone()).await.expect("connect first handle");
        let b = RedisStore::connect(config).await.expect("connect second handle");
        (Arc::new(a), Arc::new(b))
    }
}

async fn factory() -> Option<RedisFactory> {
    common::test_url().map(|url| RedisFactory { url })
}

miroir_store::conformance_tests!(factory());
