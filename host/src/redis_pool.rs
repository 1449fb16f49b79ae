//! One shared Redis connection (multiplexed, reconnecting), made lazily so
//! the service starts — and keeps serving — while Redis is down. Callers get
//! `None` when Redis is unreachable and fall back to in-process state.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long a command may take before the caller gives up on Redis for this
/// request. Redis on a LAN answers in well under a millisecond; waiting
/// longer would turn a Redis outage into an API outage.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connection attempt, wait this long before the next one.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(2);

pub struct RedisPool {
    client: redis::Client,
    pub key_prefix: String,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    next_attempt: Mutex<Instant>,
}

impl RedisPool {
    pub fn new(url: &str, key_prefix: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url)
                .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?,
            key_prefix: key_prefix.to_string(),
            conn: tokio::sync::Mutex::new(None),
            next_attempt: Mutex::new(Instant::now()),
        })
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.key_prefix)
    }

    /// A connection, or `None` if Redis cannot be reached right now.
    pub async fn connection(&self) -> Option<ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref() {
            return Some(conn.clone());
        }
        {
            let mut next = self.next_attempt.lock().expect("not poisoned");
            if Instant::now() < *next {
                return None;
            }
            *next = Instant::now() + RECONNECT_BACKOFF;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(1);
        match tokio::time::timeout(
            COMMAND_TIMEOUT * 2,
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
                tracing::warn!(error = %e, "Redis unreachable");
                None
            }
            Err(_) => {
                tracing::warn!("Redis connection timed out");
                None
            }
        }
    }

    /// True when Redis answers PING within the command timeout.
    pub async fn ping(&self) -> bool {
        let Some(mut conn) = self.connection().await else {
            return false;
        };
        matches!(
            tokio::time::timeout(
                COMMAND_TIMEOUT,
                redis::cmd("PING").query_async::<String>(&mut conn)
            )
            .await,
            Ok(Ok(_))
        )
    }
}
