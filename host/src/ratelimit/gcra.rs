//! GCRA (the generic cell rate algorithm): a token bucket stored as one
//! number per key, the "theoretical arrival time" (TAT). It allows `count`
//! requests in a burst and refills one every `period / count`, so a client
//! cannot double its rate at a window edge as with fixed windows. The same
//! arithmetic runs in-process here and in Redis (`redis_store.rs`).

use std::{collections::HashMap, sync::Mutex};

use crate::config::RateSpec;

/// The outcome of one check, with what the response headers report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix time (seconds) at which the bucket is full again.
    pub reset_at: f64,
    /// Seconds until the next request would be allowed (0 when allowed).
    pub retry_after: f64,
}

/// Small tolerance for floating-point drift at the burst boundary.
const EPSILON: f64 = 1e-9;

/// Applies GCRA to a stored TAT; returns the decision and the TAT to store
/// (`None`: leave it as it is).
pub fn decide(spec: RateSpec, stored_tat: Option<f64>, now: f64) -> (Decision, Option<f64>) {
    let period = spec.period.as_secs_f64();
    let interval = period / f64::from(spec.count);
    let tat = stored_tat.unwrap_or(now).max(now);
    let new_tat = tat + interval;
    if new_tat - now > period + EPSILON {
        let decision = Decision {
            allowed: false,
            limit: spec.count,
            remaining: 0,
            reset_at: tat,
            retry_after: (new_tat - period - now).max(0.0),
        };
        return (decision, None);
    }
    let remaining = ((period - (new_tat - now)) / interval + EPSILON).floor() as u32;
    let decision = Decision {
        allowed: true,
        limit: spec.count,
        remaining,
        reset_at: new_tat,
        retry_after: 0.0,
    };
    (decision, Some(new_tat))
}

/// In-process store: one TAT per key.
#[derive(Default)]
pub struct LocalStore {
    tats: Mutex<HashMap<String, f64>>,
}

/// Past this many keys, a check first drops the keys whose buckets are full
/// again (they carry no information), so memory stays bounded by the number
/// of recently active clients.
const SWEEP_THRESHOLD: usize = 100_000;

impl LocalStore {
    pub fn check(&self, key: &str, spec: RateSpec, now: f64) -> Decision {
        let mut tats = self.tats.lock().expect("not poisoned");
        if tats.len() > SWEEP_THRESHOLD {
            tats.retain(|_, tat| *tat > now);
        }
        let (decision, store) = decide(spec, tats.get(key).copied(), now);
        if let Some(tat) = store {
            tats.insert(key.to_string(), tat);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(count: u32, secs: u64) -> RateSpec {
        RateSpec {
            count,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn allows_a_burst_of_count_then_refuses() {
        let store = LocalStore::default();
        let s = spec(3, 60);
        let remaining: Vec<u32> = (0..3)
            .map(|_| store.check("k", s, 1000.0))
            .map(|d| {
                assert!(d.allowed);
                d.remaining
            })
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = store.check("k", s, 1000.0);
        assert!(!refused.allowed);
        // One token comes back every 20 s.
        assert!((refused.retry_after - 20.0).abs() < 1e-6, "{refused:?}");
        assert!((refused.reset_at - 1060.0).abs() < 1e-6);
        assert!(!store.check("k", s, 1019.9).allowed);
        let after = store.check("k", s, 1020.0);
        assert!(after.allowed);
        assert_eq!(after.remaining, 0);
        // Other keys are independent.
        assert!(store.check("other", s, 1000.0).allowed);
    }

    #[test]
    fn a_full_period_of_quiet_restores_the_whole_burst() {
        let store = LocalStore::default();
        let s = spec(2, 10);
        store.check("k", s, 0.0);
        store.check("k", s, 0.0);
        assert!(!store.check("k", s, 0.0).allowed);
        assert_eq!(store.check("k", s, 10.0).remaining, 1);
    }
}
