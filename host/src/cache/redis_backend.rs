//! The Redis backend: one hash per (generation, group) holding the group's
//! fields, so a group is dropped with one `DEL` and everything with one
//! `INCR` of the generation (old generations expire on their own).

use std::{sync::Arc, time::Duration};

use redis::AsyncCommands;

use crate::redis_pool::{COMMAND_TIMEOUT, RedisPool};

pub struct RedisStore {
    pool: Arc<RedisPool>,
    namespace: String,
}

impl RedisStore {
    pub fn new(pool: Arc<RedisPool>, name: &str) -> Self {
        let namespace = pool.key(&format!("cache:{name}"));
        Self { pool, namespace }
    }

    fn generation_key(&self) -> String {
        format!("{}:generation", self.namespace)
    }

    fn group_key(&self, generation: u64, group: &str) -> String {
        format!("{}:{generation}:{group}", self.namespace)
    }

    async fn generation(&self, conn: &mut redis::aio::ConnectionManager) -> Option<u64> {
        let g: Option<u64> = tokio::time::timeout(COMMAND_TIMEOUT, conn.get(self.generation_key()))
            .await
            .ok()?
            .ok()?;
        Some(g.unwrap_or(0))
    }

    /// The generation, then one pipelined `HGET` per key.
    pub async fn get_many(&self, keys: &[(&str, &str)]) -> Vec<Option<Vec<u8>>> {
        let miss = || vec![None; keys.len()];
        let Some(mut conn) = self.pool.connection().await else {
            return miss();
        };
        let Some(generation) = self.generation(&mut conn).await else {
            return miss();
        };
        let mut pipe = redis::pipe();
        for (group, field) in keys {
            pipe.hget(self.group_key(generation, group), *field);
        }
        match tokio::time::timeout(
            COMMAND_TIMEOUT,
            pipe.query_async::<Vec<Option<Vec<u8>>>>(&mut conn),
        )
        .await
        {
            Ok(Ok(values)) if values.len() == keys.len() => values,
            _ => miss(),
        }
    }

    /// A group's hash expires `ttl` after its first write, so nothing lives
    /// longer than the TTL (later fields may live shorter).
    pub async fn put_many(&self, entries: Vec<(String, String, Vec<u8>)>, ttl: Duration) {
        let Some(mut conn) = self.pool.connection().await else {
            return;
        };
        let Some(generation) = self.generation(&mut conn).await else {
            return;
        };
        let mut pipe = redis::pipe();
        for (group, field, value) in entries {
            let key = self.group_key(generation, &group);
            pipe.hset(&key, field, value).ignore();
            pipe.cmd("EXPIRE")
                .arg(&key)
                .arg(ttl.as_secs().max(1))
                .arg("NX")
                .ignore();
        }
        let _ = tokio::time::timeout(COMMAND_TIMEOUT, pipe.query_async::<()>(&mut conn)).await;
    }

    pub async fn remove_group(&self, group: &str) {
        let Some(mut conn) = self.pool.connection().await else {
            return;
        };
        let Some(generation) = self.generation(&mut conn).await else {
            return;
        };
        let _ = tokio::time::timeout(
            COMMAND_TIMEOUT,
            conn.del::<_, ()>(self.group_key(generation, group)),
        )
        .await;
    }

    pub async fn bump_generation(&self) {
        let Some(mut conn) = self.pool.connection().await else {
            return;
        };
        let _ = tokio::time::timeout(
            COMMAND_TIMEOUT,
            conn.incr::<_, _, ()>(self.generation_key(), 1),
        )
        .await;
    }
}
