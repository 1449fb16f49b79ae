//! The HTTP server's connection limits (`HTTP_*`); what they guard against
//! is in `crate::server`.

use std::time::Duration;

/// Connection limits: header-read and keep-alive idle timeouts, and a
/// connection cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    pub header_read_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(75),
            max_connections: 1024,
        }
    }
}

impl HttpSettings {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Self {
        let defaults = Self::default();
        let mut number = |key: &str, fallback: u64, range: std::ops::RangeInclusive<u64>| {
            let Some(v) = get(key) else {
                return fallback;
            };
            match v.trim().parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    errors.push(format!(
                        "{key}={v:?}: expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ));
                    fallback
                }
            }
        };
        Self {
            header_read_timeout: Duration::from_secs(number(
                "HTTP_HEADER_READ_TIMEOUT_SECS",
                defaults.header_read_timeout.as_secs(),
                1..=300,
            )),
            keepalive_timeout: Duration::from_secs(number(
                "HTTP_KEEPALIVE_TIMEOUT_SECS",
                defaults.keepalive_timeout.as_secs(),
                1..=3600,
            )),
            max_connections: number(
                "HTTP_MAX_CONNECTIONS",
                defaults.max_connections as u64,
                1..=1_000_000,
            ) as usize,
        }
    }
}
