//! One shared Redis connection (multiplexed, reconnecting), made lazily so
//! the service starts — and keeps serving — while Redis is down, behind a
//! circuit breaker so that an outage costs a request nothing.
//!
//! Every command goes through [`RedisPool::run`]. The first command that
//! fails or times out opens the breaker: from then on callers get `None` at
//! once and use their in-process fallbacks (limits, caches) instead of each
//! waiting out the timeout while the client reconnects. One background task
//! probes Redis with `PING` every `REDIS_PROBE_MS`; the first answer closes
//! the breaker again. Before it closes, the keys registered with
//! [`RedisPool::bump_on_recovery`] (the caches' generations) are incremented,
//! so whatever an invalidation missed during the outage is dropped, on every
//! replica, before anyone reads from Redis again.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use crate::config::redis::RedisSettings;

pub struct RedisPool {
    client: redis::Client,
    pub key_prefix: String,
    settings: RedisSettings,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Open: Redis is skipped until the probe sees it answer.
    open: AtomicBool,
    /// Times the breaker opened since start (for `/metrics` and tests).
    trips: AtomicU64,
    /// Round trips made (as `redis_commands_total`, for this pool alone).
    commands: AtomicU64,
    /// Keys incremented when Redis comes back, before the breaker closes.
    recovery_bumps: Mutex<Vec<String>>,
}

impl RedisPool {
    pub fn new(url: &str, key_prefix: &str, settings: RedisSettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)
                .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?,
            key_prefix: key_prefix.to_string(),
            settings,
            conn: tokio::sync::Mutex::new(None),
            open: AtomicBool::new(false),
            trips: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            recovery_bumps: Mutex::new(Vec::new()),
        })
    }

    /// For connections of their own (pub/sub), outside the breaker.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.key_prefix)
    }

    /// Whether Redis is in use right now (the breaker is closed).
    pub fn available(&self) -> bool {
        !self.open.load(Ordering::Acquire)
    }

    /// Round trips this pool made since start.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// How many times Redis was found failing since start.
    pub fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// `key` is incremented whenever Redis comes back after an outage: a
    /// cache generation, so entries an invalidation may have missed while
    /// Redis was unreachable are never read again.
    pub fn bump_on_recovery(&self, key: String) {
        self.recovery_bumps.lock().expect("not poisoned").push(key);
    }

    /// Runs one command (or pipeline, or script) on the shared connection
    /// within the command timeout. `None` when the breaker is open, when
    /// Redis cannot be reached, or when the command fails; a connection
    /// failure or a timeout opens the breaker.
    pub async fn run<R, F, Fut>(self: &Arc<Self>, what: &'static str, command: F) -> Option<R>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<R>>,
    {
        if !self.available() {
            return None;
        }
        let Some(conn) = self.connection().await else {
            self.trip(what, "unreachable");
            return None;
        };
        self.commands.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::metrics::METRICS
            .redis_commands
            .with_label_values(&[what])
            .inc();
        match tokio::time::timeout(self.settings.command_timeout, command(conn)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) if is_connection_error(&e) => {
                self.trip(what, &e.to_string());
                None
            }
            Ok(Err(e)) => {
                // A reply Redis gave (a script error, a wrong type): Redis is
                // up, this one command is wrong.
                tracing::warn!(error = %e, command = what, "Redis command failed");
                None
            }
            Err(_) => {
                self.trip(what, "timed out");
                None
            }
        }
    }

    /// True when Redis answers `PING` now (never waits while the breaker is
    /// open: `/health` must answer fast during an outage).
    pub async fn ping(self: &Arc<Self>) -> bool {
        self.run("PING", |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .is_some()
    }

    /// The shared connection, made on first use.
    async fn connection(&self) -> Option<ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Some(conn.clone());
        }
        let timeout = self.settings.command_timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout)
            .set_number_of_retries(1);
        match tokio::time::timeout(
            timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(conn)) => {
                tracing::info!("connected to Redis");
                *guard = Some(conn.clone());
                Some(conn)
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "Redis connection failed");
                None
            }
            Err(_) => None,
        }
    }

    /// Opens the breaker (once per outage) and starts the probe.
    fn trip(self: &Arc<Self>, what: &str, error: &str) {
        if self.open.swap(true, Ordering::AcqRel) {
            return;
        }
        self.trips.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            command = what,
            error,
            "Redis is failing: limits and caches fall back to this process until it answers again"
        );
        let pool = self.clone();
        tokio::spawn(async move { pool.probe_until_back().await });
    }

    async fn probe_until_back(self: Arc<Self>) {
        let timeout = self.settings.command_timeout;
        loop {
            tokio::time::sleep(self.settings.probe_interval).await;
            let Some(mut conn) = self.connection().await else {
                continue;
            };
            let pong =
                tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut conn))
                    .await;
            if !matches!(pong, Ok(Ok(_))) {
                // A fresh connection next time, rather than trusting the
                // old one's own reconnect loop.
                *self.conn.lock().await = None;
                continue;
            }
            let keys = self.recovery_bumps.lock().expect("not poisoned").clone();
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.incr(key, 1).ignore();
            }
            let bumped = tokio::time::timeout(timeout, pipe.query_async::<()>(&mut conn)).await;
            if matches!(bumped, Ok(Ok(()))) {
                self.open.store(false, Ordering::Release);
                tracing::info!(
                    caches_invalidated = keys.len(),
                    "Redis is back: limits and caches are shared again"
                );
                return;
            }
        }
    }
}

/// Failures that say Redis itself is unreachable or gone, as opposed to an
/// error reply to one command.
fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}
