//! Leases on a shared (Redis) budget, so that a busy client does not cost
//! a Redis round trip per request.
//!
//! A replica reserves several of a key's units in one script call and hands
//! them out locally until they are used up or the lease ends
//! ([`LEASE_TIME`]). Every unit handed out was reserved in Redis first, so
//! the replicas together never admit more than the limit. What a lease
//! costs is the other way round: units a replica reserved and did not use
//! before its lease ended are counted as used. Two bounds keep that small:
//! Redis grants at most a sixteenth of what is left in the bucket (near the
//! limit every request is checked on its own, exactly as without leases),
//! and a key's lease grows only while its client keeps using it up
//! (doubling, up to [`MAX_LEASE`]) and shrinks to what was used when it
//! expires half spent.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use super::gcra::Decision;
use crate::config::RateSpec;

/// Most units one lease holds.
pub const MAX_LEASE: u32 = 64;

/// How long a lease's units may be handed out.
pub const LEASE_TIME: std::time::Duration = std::time::Duration::from_millis(500);

/// Past this many keys, expired leases are dropped before a new one is
/// stored, so memory is bounded by the recently active clients.
const SWEEP_THRESHOLD: usize = 100_000;

/// What Redis granted: `units` reserved, the bucket's theoretical arrival
/// time after them, and Redis' clock.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub units: u32,
    pub tat: f64,
    pub now: f64,
}

#[derive(Debug)]
struct Lease {
    /// Units still to hand out.
    left: u32,
    /// Units this lease started with.
    size: u32,
    /// What the next lease asks Redis for.
    next: u32,
    /// The bucket's state after the whole lease was reserved.
    tat: f64,
    granted_at: f64,
    expires: Instant,
}

/// The leases of one replica, by rate-limit key.
#[derive(Default)]
pub struct Leases {
    leases: Mutex<HashMap<String, Lease>>,
}

impl Leases {
    /// Hands out one unit of `key`'s live lease, if it has one.
    pub fn take(&self, key: &str, spec: RateSpec, now: Instant) -> Option<Decision> {
        let mut leases = self.leases.lock().expect("not poisoned");
        let lease = leases.get_mut(key)?;
        if lease.left == 0 {
            return None;
        }
        if now >= lease.expires {
            // Ended half spent: the next lease is what this one used.
            lease.next = (lease.size - lease.left).max(1);
            lease.left = 0;
            return None;
        }
        lease.left -= 1;
        if lease.left == 0 {
            lease.next = (lease.size * 2).min(MAX_LEASE);
        }
        Some(decision(spec, lease.tat, lease.granted_at, lease.left))
    }

    /// How many units to ask Redis for, for `key`.
    pub fn wanted(&self, key: &str) -> u32 {
        let leases = self.leases.lock().expect("not poisoned");
        leases.get(key).map_or(1, |l| l.next)
    }

    /// Keeps what Redis granted (the first unit goes to the caller) and
    /// returns the caller's decision.
    pub fn keep(&self, key: &str, spec: RateSpec, grant: Grant, now: Instant) -> Decision {
        let left = grant.units.saturating_sub(1);
        let mut leases = self.leases.lock().expect("not poisoned");
        if leases.len() > SWEEP_THRESHOLD {
            leases.retain(|_, l| l.left > 0 && l.expires > now);
        }
        let next = if left == 0 {
            (grant.units * 2).min(MAX_LEASE)
        } else {
            leases.get(key).map_or(grant.units, |l| l.next)
        };
        leases.insert(
            key.to_string(),
            Lease {
                left,
                size: grant.units,
                next,
                tat: grant.tat,
                granted_at: grant.now,
                expires: now + LEASE_TIME,
            },
        );
        decision(spec, grant.tat, grant.now, left)
    }

    /// Forgets every lease (while Redis is away the local store decides).
    pub fn clear(&self) {
        self.leases.lock().expect("not poisoned").clear();
    }
}

/// An admission with `left` of the lease still held by this replica: the
/// headers report the bucket as if each unit had been reserved alone.
fn decision(spec: RateSpec, tat: f64, now: f64, left: u32) -> Decision {
    let period = spec.period.as_secs_f64();
    let interval = period / f64::from(spec.count);
    let tat = tat - f64::from(left) * interval;
    Decision {
        allowed: true,
        limit: spec.count,
        remaining: ((period - (tat - now)) / interval + 1e-9)
            .floor()
            .clamp(0.0, f64::from(spec.count)) as u32,
        reset_at: tat,
        retry_after: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec() -> RateSpec {
        RateSpec {
            count: 6000,
            period: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_lease_grows_while_used_up_and_shrinks_when_it_expires_unused() {
        let leases = Leases::default();
        let t0 = Instant::now();
        assert_eq!(leases.wanted("k"), 1);
        let grant = |units| Grant {
            units,
            tat: 1000.0 + f64::from(units) * 0.01,
            now: 1000.0,
        };
        leases.keep("k", spec(), grant(1), t0);
        assert_eq!(leases.wanted("k"), 2, "used up at once: double");
        leases.keep("k", spec(), grant(2), t0);
        assert!(leases.take("k", spec(), t0).is_some());
        assert!(leases.take("k", spec(), t0).is_none(), "spent");
        assert_eq!(leases.wanted("k"), 4);
        leases.keep("k", spec(), grant(64), t0);
        for _ in 0..3 {
            assert!(leases.take("k", spec(), t0).is_some());
        }
        // Four of 64 used when it ends: the next lease asks for four.
        assert!(leases.take("k", spec(), t0 + LEASE_TIME).is_none());
        assert_eq!(leases.wanted("k"), 4);
    }

    #[test]
    fn headers_count_down_across_a_lease() {
        let leases = Leases::default();
        let t0 = Instant::now();
        // 6000/min: one unit per 10 ms; ten reserved from a full bucket.
        let first = leases.keep(
            "k",
            spec(),
            Grant {
                units: 10,
                tat: 1000.1,
                now: 1000.0,
            },
            t0,
        );
        assert_eq!(first.remaining, 5999);
        let second = leases.take("k", spec(), t0).unwrap();
        assert_eq!(second.remaining, 5998);
    }
}
