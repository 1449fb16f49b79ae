//! The Redis backend: one hash per (generation, group) holding the group's
//! fields, so a group is dropped with one `DEL` and everything with one
//! `INCR` of the generation (old generations expire on their own). Reads
//! and writes are one round trip each: the generation is read inside the
//! same Lua script as the fields.

use std::{sync::Arc, sync::LazyLock, time::Duration};

use crate::redis_pool::RedisPool;

pub struct RedisStore {
    pool: Arc<RedisPool>,
    namespace: String,
}

/// KEYS[1] the generation; ARGV: the namespace, then group, field pairs.
static GET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local g = redis.call('GET', KEYS[1]) or '0'
local out = {}
for i = 2, #ARGV, 2 do
  out[#out + 1] = redis.call('HGET', ARGV[1] .. ':' .. g .. ':' .. ARGV[i], ARGV[i + 1]) or false
end
return out
"#,
    )
});

/// KEYS[1] the generation; ARGV: the namespace, the TTL in seconds, then
/// group, field, value triples. A group's hash expires `ttl` after its
/// first write, so nothing lives longer than the TTL.
static PUT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local g = redis.call('GET', KEYS[1]) or '0'
for i = 3, #ARGV, 3 do
  local key = ARGV[1] .. ':' .. g .. ':' .. ARGV[i]
  redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2])
  redis.call('EXPIRE', key, ARGV[2], 'NX')
end
return 1
"#,
    )
});

/// KEYS[1] the generation; ARGV: the namespace, the group.
static DEL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local g = redis.call('GET', KEYS[1]) or '0'
return redis.call('DEL', ARGV[1] .. ':' .. g .. ':' .. ARGV[2])
"#,
    )
});

impl RedisStore {
    pub fn new(pool: Arc<RedisPool>, name: &str) -> Self {
        let namespace = pool.key(&format!("cache:{name}"));
        let store = Self { pool, namespace };
        store.pool.bump_on_recovery(store.generation_key());
        store
    }

    fn generation_key(&self) -> String {
        format!("{}:generation", self.namespace)
    }

    /// `None` when Redis did not answer (the caller falls back).
    pub async fn get_many(&self, keys: &[(&str, &str)]) -> Option<Vec<Option<Vec<u8>>>> {
        let mut invocation = GET.key(self.generation_key());
        invocation.arg(&self.namespace);
        for (group, field) in keys {
            invocation.arg(*group).arg(*field);
        }
        let values = self
            .pool
            .run("cache get", |mut conn| async move {
                invocation
                    .invoke_async::<Vec<Option<Vec<u8>>>>(&mut conn)
                    .await
            })
            .await?;
        (values.len() == keys.len()).then_some(values)
    }

    /// Whether Redis took the entries.
    pub async fn put_many(&self, entries: &[(&str, &str, &[u8])], ttl: Duration) -> bool {
        let mut invocation = PUT.key(self.generation_key());
        invocation.arg(&self.namespace).arg(ttl.as_secs().max(1));
        for (group, field, value) in entries {
            invocation.arg(*group).arg(*field).arg(*value);
        }
        self.pool
            .run("cache put", |mut conn| async move {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await
            .is_some()
    }

    pub async fn remove_group(&self, group: &str) {
        let mut invocation = DEL.key(self.generation_key());
        invocation.arg(&self.namespace).arg(group);
        self.pool
            .run("cache invalidate", |mut conn| async move {
                invocation.invoke_async::<i64>(&mut conn).await
            })
            .await;
    }

    pub async fn bump_generation(&self) {
        let key = self.generation_key();
        self.pool
            .run("cache invalidate all", |mut conn| async move {
                redis::cmd("INCR")
                    .arg(key)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
    }
}
