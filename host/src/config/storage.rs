//! Where state lives: the database, Redis, and the caches (their TTLs here,
//! their bounds in [`CacheSettings`], Redis's timeouts in
//! [`RedisSettings`]).

use std::time::Duration;

use super::{CacheSettings, RedisSettings};
use super::{Settings, env::Env};

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.text("DATABASE_URL", &mut s.database_url);
    if !(s.database_url.starts_with("sqlite:")
        || s.database_url.starts_with("postgres://")
        || s.database_url.starts_with("postgresql://"))
    {
        env.error(format!(
            "DATABASE_URL={:?}: expected sqlite://PATH or postgres://...",
            s.database_url
        ));
    }
    env.read("DATABASE_MAX_CONNECTIONS", &mut s.database_max_connections);
    if s.database_max_connections == 0 {
        env.error("DATABASE_MAX_CONNECTIONS must be at least 1");
    }
    let mut acquire_ms = s.database_acquire_timeout.as_millis() as u64;
    env.read("DATABASE_ACQUIRE_TIMEOUT_MS", &mut acquire_ms);
    if !(10..=60_000).contains(&acquire_ms) {
        env.error("DATABASE_ACQUIRE_TIMEOUT_MS must be 10..=60000");
    }
    s.database_acquire_timeout = Duration::from_millis(acquire_ms);

    s.redis_url = env.get("REDIS_URL");
    env.text("REDIS_KEY_PREFIX", &mut s.redis_key_prefix);
    s.redis = env.nested(RedisSettings::from_lookup);

    env.seconds("FEATURE_CACHE_TTL", &mut s.feature_cache_ttl);
    env.seconds("CACHE_TTL", &mut s.cache_ttl);
    s.cache = env.nested(CacheSettings::from_lookup);
}
