//! How long Redis may take, and how often a broken Redis is probed
//! (`REDIS_TIMEOUT_MS`, `REDIS_PROBE_MS`; see `crate::redis_pool`).

use std::time::Duration;

/// Timeouts and probing (`REDIS_TIMEOUT_MS`, `REDIS_PROBE_MS`).
#[derive(Debug, Clone, Copy)]
pub struct RedisSettings {
    /// How long one command may take before it counts as a failure. Redis on
    /// a LAN answers in well under a millisecond; waiting longer turns a
    /// Redis outage into an API outage (default 250 ms).
    pub command_timeout: Duration,
    /// How often an open breaker probes Redis (default 500 ms): also the
    /// longest a recovered Redis goes unused.
    pub probe_interval: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_millis(250),
            probe_interval: Duration::from_millis(500),
        }
    }
}

impl RedisSettings {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Self {
        let defaults = Self::default();
        let millis = |key: &str, default: Duration, errors: &mut Vec<String>| match get(key) {
            None => default,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (1..=60_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    errors.push(format!("{key}={v:?}: expected milliseconds, 1..=60000"));
                    default
                }
            },
        };
        Self {
            command_timeout: millis("REDIS_TIMEOUT_MS", defaults.command_timeout, errors),
            probe_interval: millis("REDIS_PROBE_MS", defaults.probe_interval, errors),
        }
    }
}
