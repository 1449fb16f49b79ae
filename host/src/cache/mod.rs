//! Caches with a time to live, grouped so a whole group can be dropped at
//! once: "everything cached for user 42". Two levels when `REDIS_URL` is
//! set: a bounded in-process L1 in front of Redis, which replicas share.
//!
//! Every cache is bounded: the in-process store ([`local`]) by bytes,
//! fields per group and time, whatever callers send; keys that carry caller
//! input are fixed-size digests ([`digest`]). In Redis, entries carry the
//! generation they were written in; invalidating everything bumps the
//! generation instead of walking the keys, so it is O(1).
//!
//! With Redis, a read tries the L1, then Redis (one round trip for all the
//! keys the L1 missed), and keeps what Redis had in the L1; a write goes to
//! both. L1 entries live at most `CACHE_L1_TTL` (5 s). An invalidation is
//! applied to the L1 and Redis and published on the [`bus`], so the other
//! replicas drop it from their L1s at once; a replica that misses a message
//! serves the stale entry for at most the L1 TTL.
//!
//! While Redis is unreachable (its circuit breaker is open, see
//! [`crate::redis_pool`]) the L1 alone serves. On PostgreSQL, invalidations
//! then travel over the database ([`bus`]), so entries written during the
//! outage live the cache's whole TTL; without that channel they live
//! `CACHE_L1_TTL`, the most another replica's missed invalidation can be
//! served stale. When Redis comes back every cache's generation is bumped
//! before it is read again, and each process drops its L1: an invalidation
//! issued during the outage is never undone by an entry written before it.

pub mod bus;
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
use sha2::{Digest, Sha256};

pub use crate::config::cache::CacheSettings;
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

/// A fixed-size key (32 hex digits of SHA-256) for a value built from caller
/// input, so what a caller sends never sizes the key.
pub fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// What caches share with the other replicas: Redis, and the channel
/// their invalidations travel on.
#[derive(Clone)]
pub struct Shared {
    pub pool: Arc<RedisPool>,
    pub bus: Arc<bus::Bus>,
}

impl Shared {
    /// Starts listening to the other replicas' invalidations (over Redis,
    /// and over `db` when it is PostgreSQL, for when Redis is down).
    pub fn new(pool: Arc<RedisPool>, db: &crate::store::Db, database_url: &str) -> Self {
        let bus = bus::Bus::new(pool.clone());
        bus.spawn_listener();
        bus.attach_database(db.clone(), database_url.to_string());
        Self { pool, bus }
    }
}

/// A cache of `T` values addressed by (group, field).
pub struct Cache<T> {
    pub name: &'static str,
    ttl: Duration,
    /// How long the L1 keeps an entry while it cannot hear every
    /// invalidation of the other replicas.
    l1_ttl: Duration,
    /// The L1 (the only level without Redis).
    local: Arc<local::LocalStore<T>>,
    redis: Option<RedisShared>,
    pub stats: Arc<CacheStats>,
}

/// The Redis side of a cache, and which of Redis' outages this cache has
/// already dropped its L1 for.
struct RedisShared {
    store: redis_backend::RedisStore,
    pool: Arc<RedisPool>,
    bus: Arc<bus::Bus>,
    trips_seen: AtomicU64,
}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Cache<T> {
    /// `ttl` zero disables the cache: every read misses, writes are dropped.
    pub fn new(
        name: &'static str,
        ttl: Duration,
        shared: Option<&Shared>,
        settings: &CacheSettings,
    ) -> Self {
        let l1_ttl = match shared {
            Some(_) => ttl.min(settings.l1_ttl),
            None => ttl,
        };
        let local = Arc::new(local::LocalStore::new(settings.max_bytes, ttl));
        let redis = shared.map(|shared| {
            let l1 = local.clone();
            shared.bus.listen(
                name,
                Arc::new(move |group: Option<&str>| match group {
                    Some(group) => l1.remove_group(group),
                    None => l1.clear(),
                }),
            );
            RedisShared {
                store: redis_backend::RedisStore::new(shared.pool.clone(), name),
                trips_seen: AtomicU64::new(shared.pool.trips()),
                pool: shared.pool.clone(),
                bus: shared.bus.clone(),
            }
        });
        Self {
            name,
            ttl,
            l1_ttl,
            local,
            redis,
            stats: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn backend_name(&self) -> &'static str {
        match self.redis {
            None => "in-process",
            Some(_) => "redis",
        }
    }

    /// Redis when it is configured and answering. Coming back from an
    /// outage, first drops what this process cached while it was away.
    fn shared(&self) -> Option<&RedisShared> {
        let shared = self.redis.as_ref()?;
        if !shared.pool.available() {
            return None;
        }
        let trips = shared.pool.trips();
        if shared.trips_seen.swap(trips, Ordering::Relaxed) != trips {
            self.local.clear();
        }
        Some(shared)
    }

    fn count(&self, found: &[Option<Arc<T>>]) {
        let hits = found.iter().filter(|f| f.is_some()).count() as u64;
        self.stats.hits.fetch_add(hits, Ordering::Relaxed);
        self.stats
            .misses
            .fetch_add(found.len() as u64 - hits, Ordering::Relaxed);
    }

    pub async fn get(&self, group: &str, field: &str) -> Option<Arc<T>> {
        self.get_many(&[(group, field)]).await.pop().flatten()
    }

    /// The L1 first; one Redis round trip for whatever it missed. Values
    /// are shared with the L1, not copied: a hit costs a reference count.
    pub async fn get_many(&self, keys: &[(&str, &str)]) -> Vec<Option<Arc<T>>> {
        if !self.enabled() {
            self.stats
                .misses
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
            return vec![None; keys.len()];
        }
        // Before the L1 is read: coming back from an outage drops it.
        let shared = self.shared();
        let mut found: Vec<Option<Arc<T>>> = self.local.get_many(keys);
        let missed: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if !missed.is_empty()
            && let Some(shared) = shared
        {
            let wanted: Vec<(&str, &str)> = missed.iter().map(|&i| keys[i]).collect();
            if let Some(values) = shared.store.get_many(&wanted).await {
                let mut promoted = Vec::new();
                for (&i, raw) in missed.iter().zip(values) {
                    let Some(bytes) = raw else { continue };
                    let Ok(value) = serde_json::from_slice::<T>(&bytes) else {
                        continue;
                    };
                    let (group, field) = keys[i];
                    let value = Arc::new(value);
                    promoted.push((
                        group.to_string(),
                        field.to_string(),
                        value.clone(),
                        bytes.len(),
                    ));
                    found[i] = Some(value);
                }
                self.local.put_many(promoted, self.l1_ttl);
            }
        }
        self.count(&found);
        found
    }

    pub async fn put(&self, group: &str, field: &str, value: Arc<T>) {
        self.put_many(vec![(group.to_string(), field.to_string(), value)])
            .await
    }

    pub async fn put_many(&self, entries: Vec<(String, String, Arc<T>)>) {
        if !self.enabled() || entries.is_empty() {
            return;
        }
        let encoded: Vec<(String, String, Arc<T>, Vec<u8>)> = entries
            .into_iter()
            .filter_map(|(g, f, v)| {
                let bytes = serde_json::to_vec(&*v).ok()?;
                Some((g, f, v, bytes))
            })
            .collect();
        let l1_ttl = if let Some(shared) = self.shared() {
            let wire = encoded
                .iter()
                .map(|(g, f, _, bytes)| (g.as_str(), f.as_str(), bytes.as_slice()))
                .collect::<Vec<_>>();
            shared.store.put_many(&wire, self.ttl).await;
            self.l1_ttl
        } else {
            self.l1_ttl_alone()
        };
        self.local.put_many(
            encoded
                .into_iter()
                .map(|(g, f, v, bytes)| (g, f, v, bytes.len()))
                .collect(),
            l1_ttl,
        );
    }

    /// How long the L1 keeps what it writes with Redis down: the whole TTL
    /// when the other replicas' invalidations still arrive (over the
    /// database), else `CACHE_L1_TTL`. Without Redis configured the L1 is
    /// the only level and keeps the whole TTL.
    fn l1_ttl_alone(&self) -> Duration {
        match &self.redis {
            None => self.ttl,
            Some(redis) if redis.bus.fallback_live() => self.ttl,
            Some(_) => self.l1_ttl,
        }
    }

    /// Drops every entry of one group.
    pub async fn invalidate_group(&self, group: &str) {
        self.local.remove_group(group);
        if let Some(shared) = self.shared() {
            shared.store.remove_group(group).await;
            shared.bus.publish(self.name, Some(group)).await;
        } else if let Some(redis) = &self.redis {
            redis
                .bus
                .publish_without_redis(self.name, Some(group))
                .await;
        }
    }

    /// Drops everything (a new model, a rules change).
    pub async fn invalidate_all(&self) {
        self.local.clear();
        if let Some(shared) = self.shared() {
            shared.store.bump_generation().await;
            shared.bus.publish(self.name, None).await;
        } else if let Some(redis) = &self.redis {
            redis.bus.publish_without_redis(self.name, None).await;
        }
    }

    /// Frees expired in-process entries now (the cleanup job); Redis expires
    /// its own. Returns how many expired since the last call.
    pub fn purge_expired(&self) -> usize {
        self.local.purge_expired()
    }

    /// Entries held in this process.
    pub fn local_len(&self) -> usize {
        self.local.len()
    }

    /// Bytes this process holds for the cache, against its `CACHE_MAX_MB`.
    pub fn local_bytes(&self) -> u64 {
        self.local.weighted_bytes()
    }
}
