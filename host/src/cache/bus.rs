//! Invalidation messages between replicas, over Redis pub/sub: what keeps
//! each replica's in-process L1 coherent with the others.
//!
//! An invalidation (a group, or a whole cache) is applied locally, in
//! Redis, and published on one channel; every other replica's listener
//! applies it to its own L1. A replica whose subscription drops cannot know
//! what it missed, so it clears its L1s when it subscribes again; the L1
//! TTL (`CACHE_L1_TTL`) bounds what it serves stale meanwhile.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures_util::StreamExt as _;

use crate::redis_pool::RedisPool;

/// Applies an invalidation to one cache's L1: a group, or everything.
pub type Listener = Arc<dyn Fn(Option<&str>) + Send + Sync>;

pub struct Bus {
    pool: Arc<RedisPool>,
    channel: String,
    /// Messages this process sent come back to it; it skips them.
    origin: String,
    listeners: RwLock<HashMap<&'static str, Listener>>,
}

/// How long the listener waits before subscribing again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(500);

impl Bus {
    pub fn new(pool: Arc<RedisPool>) -> Arc<Self> {
        Arc::new(Self {
            channel: pool.key("cache:invalidations"),
            pool,
            origin: uuid::Uuid::new_v4().simple().to_string(),
            listeners: RwLock::default(),
        })
    }

    pub fn listen(&self, cache: &'static str, listener: Listener) {
        self.listeners
            .write()
            .expect("not poisoned")
            .insert(cache, listener);
    }

    /// Tells the other replicas; `None` is "everything in this cache".
    pub async fn publish(&self, cache: &str, group: Option<&str>) {
        let message = format!("{}\t{cache}\t{}", self.origin, group.unwrap_or("\u{0}"));
        let channel = self.channel.clone();
        self.pool
            .run("cache invalidation publish", |mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
    }

    fn apply(&self, message: &str) {
        let mut parts = message.splitn(3, '\t');
        let (Some(origin), Some(cache), Some(group)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if origin == self.origin {
            return;
        }
        let group = (group != "\u{0}").then_some(group);
        if let Some(listener) = self.listeners.read().expect("not poisoned").get(cache) {
            listener(group);
        }
    }

    fn clear_all(&self) {
        for listener in self.listeners.read().expect("not poisoned").values() {
            listener(None);
        }
    }

    /// Subscribes for the life of the process, again after every drop.
    pub fn spawn_listener(self: &Arc<Self>) {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut subscribed_before = false;
            loop {
                match bus.pool.client().get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(&bus.channel).await.is_ok() {
                            if subscribed_before {
                                // Whatever was published meanwhile is lost.
                                bus.clear_all();
                            }
                            subscribed_before = true;
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                if let Ok(text) = message.get_payload::<String>() {
                                    bus.apply(&text);
                                }
                            }
                            tracing::warn!("cache invalidation subscription lost");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cache invalidation subscribe failed"),
                }
                tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            }
        });
    }
}
