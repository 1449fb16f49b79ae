//! Cache bounds from the environment (`CACHE_MAX_MB`, `CACHE_L1_TTL`); the
//! TTLs of each cache are the service's own settings (`CACHE_TTL`,
//! `FEATURE_CACHE_TTL`).

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// Bytes each cache may hold in process (`CACHE_MAX_MB`, default 64 per
    /// cache), weighed by the entries' serialized size.
    pub max_bytes: u64,
    /// With Redis configured, how long this process may serve an entry from
    /// its own memory while Redis is unreachable (`CACHE_L1_TTL`, seconds,
    /// default 5): the staleness bound of an outage.
    pub l1_ttl: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            l1_ttl: Duration::from_secs(5),
        }
    }
}

impl CacheSettings {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Self {
        let defaults = Self::default();
        let mut number =
            |key: &str, range: std::ops::RangeInclusive<u64>, default: u64| match get(key) {
                None => default,
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if range.contains(&n) => n,
                    _ => {
                        errors.push(format!(
                            "{key}={v:?}: expected a whole number in {}..={}",
                            range.start(),
                            range.end()
                        ));
                        default
                    }
                },
            };
        Self {
            max_bytes: number("CACHE_MAX_MB", 1..=65_536, defaults.max_bytes >> 20) << 20,
            l1_ttl: Duration::from_secs(number(
                "CACHE_L1_TTL",
                1..=3600,
                defaults.l1_ttl.as_secs(),
            )),
        }
    }
}
