//! Caches with a time to live, in-process or in Redis (shared by replicas
//! when `REDIS_URL` is set), grouped so a whole group can be dropped at
//! once: "everything cached for user 42".
//!
//! Entries carry the generation they were written in; invalidating
//! everything bumps the generation instead of walking the keys, so it is
//! O(1) in both backends. A Redis that stops answering turns reads into
//! misses and writes into no-ops: the service slows down, it does not fail.

mod local;
mod redis_backend;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};

use crate::redis_pool::RedisPool;

/// Hits and misses of one cache, for `/metrics` and the tests.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

impl CacheStats {
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}

enum Backend<T> {
    Local(local::LocalStore<T>),
    Redis(redis_backend::RedisStore),
}

/// A cache of `T` values addressed by (group, field).
pub struct Cache<T> {
    pub name: &'static str,
    ttl: Duration,
    backend: Backend<T>,
    pub stats: Arc<CacheStats>,
}

impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Cache<T> {
    /// `ttl` zero disables the cache: every read misses, writes are dropped.
    pub fn new(name: &'static str, ttl: Duration, redis: Option<Arc<RedisPool>>) -> Self {
        let backend = match redis {
            Some(pool) => Backend::Redis(redis_backend::RedisStore::new(pool, name)),
            None => Backend::Local(local::LocalStore::default()),
        };
        Self {
            name,
            ttl,
            backend,
            stats: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Local(_) => "in-process",
            Backend::Redis(_) => "redis",
        }
    }

    fn count(&self, hit: bool) {
        let counter = if hit {
            &self.stats.hits
        } else {
            &self.stats.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub async fn get(&self, group: &str, field: &str) -> Option<T> {
        self.get_many(&[(group, field)]).await.pop().flatten()
    }

    /// One round trip for any number of keys.
    pub async fn get_many(&self, keys: &[(&str, &str)]) -> Vec<Option<T>> {
        if !self.enabled() {
            self.stats
                .misses
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
            return vec![None; keys.len()];
        }
        let found = match &self.backend {
            Backend::Local(store) => store.get_many(keys, self.ttl),
            Backend::Redis(store) => store
                .get_many(keys)
                .await
                .into_iter()
                .map(|raw| raw.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
                .collect(),
        };
        for entry in &found {
            self.count(entry.is_some());
        }
        found
    }

    pub async fn put(&self, group: &str, field: &str, value: T) {
        self.put_many(vec![(group.to_string(), field.to_string(), value)])
            .await
    }

    pub async fn put_many(&self, entries: Vec<(String, String, T)>) {
        if !self.enabled() || entries.is_empty() {
            return;
        }
        match &self.backend {
            Backend::Local(store) => store.put_many(entries),
            Backend::Redis(store) => {
                let encoded = entries
                    .into_iter()
                    .filter_map(|(g, f, v)| Some((g, f, serde_json::to_vec(&v).ok()?)))
                    .collect();
                store.put_many(encoded, self.ttl).await
            }
        }
    }

    /// Drops every entry of one group.
    pub async fn invalidate_group(&self, group: &str) {
        match &self.backend {
            Backend::Local(store) => store.remove_group(group),
            Backend::Redis(store) => store.remove_group(group).await,
        }
    }

    /// Drops everything (a new model, a rules change).
    pub async fn invalidate_all(&self) {
        match &self.backend {
            Backend::Local(store) => store.clear(),
            Backend::Redis(store) => store.bump_generation().await,
        }
    }

    /// Frees expired entries (the cleanup job); Redis expires its own.
    /// Returns how many were removed.
    pub fn purge_expired(&self) -> usize {
        match &self.backend {
            Backend::Local(store) => store.purge_expired(self.ttl),
            Backend::Redis(_) => 0,
        }
    }

    /// Entries held in process (0 for Redis).
    pub fn local_len(&self) -> usize {
        match &self.backend {
            Backend::Local(store) => store.len(),
            Backend::Redis(_) => 0,
        }
    }
}
