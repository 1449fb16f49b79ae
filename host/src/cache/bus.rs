//! Invalidation messages between replicas, over Redis pub/sub: what keeps
//! each replica's in-process L1 coherent with the others.
//!
//! An invalidation (a group, or a whole cache) is applied locally, in
//! Redis, and published on one channel; every other replica's listener
//! applies it to its own L1. A replica whose subscription drops cannot know
//! what it missed, so it clears its L1s when it subscribes again; the L1
//! TTL (`CACHE_L1_TTL`) bounds what it serves stale meanwhile.
//!
//! While Redis is down, replicas on PostgreSQL carry the same messages
//! over `LISTEN`/`NOTIFY` instead ([`Bus::attach_database`]): invalidations
//! still reach every replica, so their L1s may keep entries for the
//! cache's whole TTL rather than recomputing every `CACHE_L1_TTL`
//! ([`Bus::fallback_live`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt as _;

use crate::{
    redis_pool::RedisPool,
    store::{Db, Dialect, notify},
};

/// The PostgreSQL channel the messages take while Redis is down.
const DATABASE_CHANNEL: &str = "recengine_cache_invalidations";

/// The database side of the bus.
struct Fallback {
    db: Db,
    /// The listener is connected: it hears every message sent from now.
    live: Arc<AtomicBool>,
}

/// Applies an invalidation to one cache's L1: a group, or everything.
pub type Listener = Arc<dyn Fn(Option<&str>) + Send + Sync>;

pub struct Bus {
    pool: Arc<RedisPool>,
    channel: String,
    /// Messages this process sent come back to it; it skips them.
    origin: String,
    listeners: RwLock<HashMap<&'static str, Listener>>,
    fallback: OnceLock<Fallback>,
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
            fallback: OnceLock::new(),
        })
    }

    /// Carries messages over PostgreSQL while Redis is down (nothing on
    /// SQLite: a single process has no one to tell). Every replica listens
    /// all the time; a replica whose listener reconnects clears its L1s,
    /// having possibly missed messages.
    pub fn attach_database(self: &Arc<Self>, db: Db, database_url: String) {
        if db.dialect != Dialect::Postgres {
            return;
        }
        let live = Arc::new(AtomicBool::new(false));
        if self
            .fallback
            .set(Fallback {
                db,
                live: live.clone(),
            })
            .is_err()
        {
            return;
        }
        let (on_connect, on_lost, handler) = (self.clone(), live.clone(), self.clone());
        let mut connected_before = false;
        notify::listen_with(
            database_url,
            DATABASE_CHANNEL,
            move || {
                if connected_before {
                    on_connect.clear_all();
                }
                connected_before = true;
                live.store(true, Ordering::Release);
            },
            move || on_lost.store(false, Ordering::Release),
            move |payload| {
                handler.apply(&payload);
                async {}
            },
        );
    }

    /// Whether invalidations reach the other replicas without Redis: the
    /// database channel is attached and listening.
    pub fn fallback_live(&self) -> bool {
        self.fallback
            .get()
            .is_some_and(|f| f.live.load(Ordering::Acquire))
    }

    /// Tells the other replicas over the database (Redis being down).
    pub async fn publish_without_redis(&self, cache: &str, group: Option<&str>) {
        let Some(fallback) = self.fallback.get() else {
            return;
        };
        let message = self.message(cache, group);
        if let Err(e) = notify::notify(&fallback.db.pool, DATABASE_CHANNEL, &message).await {
            tracing::warn!(cache, error = %e, "cache invalidation not sent over the database");
        }
    }

    fn message(&self, cache: &str, group: Option<&str>) -> String {
        format!("{}\t{cache}\t{}", self.origin, group.unwrap_or("\u{0}"))
    }

    pub fn listen(&self, cache: &'static str, listener: Listener) {
        self.listeners
            .write()
            .expect("not poisoned")
            .insert(cache, listener);
    }

    /// Tells the other replicas; `None` is "everything in this cache". Over
    /// the database when Redis does not take the message (an outage that
    /// starts with this very command).
    pub async fn publish(&self, cache: &str, group: Option<&str>) {
        let message = self.message(cache, group);
        let channel = self.channel.clone();
        let sent = self
            .pool
            .run("cache invalidation publish", |mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        if sent.is_none() {
            self.publish_without_redis(cache, group).await;
        }
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
