//! Shadow evaluation: a candidate bundle runs beside the active rules on
//! live requests, off the response path, and its answers are compared
//! with the ones users got, so ops can promote it with evidence.
//!
//! The response never waits for the shadow: it runs on the blocking pool
//! after the live pipeline, at most [`MAX_IN_FLIGHT`] at a time (beyond
//! that a request is skipped and counted), so its cost is bounded CPU, not
//! latency.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use chrono::{DateTime, Utc};
use recengine_rules_sdk::Kind;
use serde::Serialize;
use utoipa::ToSchema;

use crate::rules::{
    input::Subject,
    pipeline::{self, TraceStatus},
    registry::{ActiveRule, RuleRegistry, RuleSet},
};

/// Shadow pipelines running at once; more are skipped.
pub const MAX_IN_FLIGHT: usize = 2;
/// Differences kept as examples.
const EXAMPLES: usize = 5;

pub struct Shadow {
    pub name: String,
    pub revision: String,
    /// The bundle's rules; they replace the same bundle's live rules (if
    /// any) on top of whatever else is live at the time of each request.
    pub rules: Vec<ActiveRule>,
    pub started_at: DateTime<Utc>,
    stats: Mutex<Stats>,
    in_flight: AtomicUsize,
}

#[derive(Debug, Default)]
struct Stats {
    compared: u64,
    identical: u64,
    skipped: u64,
    overlap_sum: f64,
    correlation_sum: f64,
    correlated: u64,
    added: u64,
    dropped: u64,
    errors: u64,
    latency_ms_sum: f64,
    latency_ms_max: f64,
    examples: Vec<Difference>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Difference {
    pub user_id: i64,
    pub live: Vec<i64>,
    pub shadow: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShadowReport {
    pub name: String,
    pub revision: String,
    pub started_at: DateTime<Utc>,
    /// Requests compared, and skipped because the budget was in use.
    pub compared: u64,
    pub skipped: u64,
    /// Requests whose top-N was the same list in the same order.
    pub identical: u64,
    /// Mean |live ∩ shadow| / |live ∪ shadow| of the top-N.
    pub mean_overlap: f64,
    /// Mean Spearman correlation of the ranks of the items both returned.
    pub mean_rank_correlation: f64,
    /// Items the shadow put in / left out of the top-N, summed.
    pub items_added: u64,
    pub items_dropped: u64,
    /// Shadow rule failures.
    pub errors: u64,
    pub mean_latency_ms: f64,
    pub max_latency_ms: f64,
    pub examples: Vec<Difference>,
}

/// Spearman's rho over the items in both lists (1 with fewer than 2).
fn rank_correlation(live: &[i64], shadow: &[i64]) -> Option<f64> {
    let common: Vec<(usize, usize)> = live
        .iter()
        .enumerate()
        .filter_map(|(i, id)| shadow.iter().position(|s| s == id).map(|j| (i, j)))
        .collect();
    let n = common.len();
    if n < 2 {
        return None;
    }
    // Re-rank within the common items so the ranks are 0..n in both.
    let mut by_shadow: Vec<usize> = (0..n).collect();
    by_shadow.sort_by_key(|&k| common[k].1);
    let mut shadow_rank = vec![0usize; n];
    for (r, k) in by_shadow.into_iter().enumerate() {
        shadow_rank[k] = r;
    }
    let d2: f64 = (0..n)
        .map(|k| (k as f64 - shadow_rank[k] as f64).powi(2))
        .sum();
    let n = n as f64;
    Some(1.0 - 6.0 * d2 / (n * (n * n - 1.0)))
}

impl Shadow {
    pub fn new(name: String, revision: String, rules: Vec<ActiveRule>) -> Self {
        Self {
            name,
            revision,
            rules,
            started_at: Utc::now(),
            stats: Mutex::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The live set with this bundle's rules in place of its live ones.
    pub fn rule_set(&self, live: &RuleSet) -> RuleSet {
        let mut rules: Vec<ActiveRule> = live
            .rules
            .iter()
            .filter(|r| !r.source.is_bundle(&self.name))
            .filter(|r| !self.rules.iter().any(|s| s.name() == r.name()))
            .cloned()
            .collect();
        rules.extend(self.rules.iter().cloned());
        RuleSet::new(rules, live.version)
    }

    /// Runs the shadow pipeline on a copy of the request in the
    /// background and compares its top `top_n` with what was served (the
    /// organic list: promotions are not compared).
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        self: &Arc<Self>,
        registry: Arc<RuleRegistry>,
        live_set: &RuleSet,
        subject: Subject,
        kinds: Option<Vec<Kind>>,
        user_id: i64,
        served: Vec<i64>,
        top_n: usize,
    ) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.stats.lock().expect("not poisoned").skipped += 1;
            return;
        }
        let set = self.rule_set(live_set);
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let out = pipeline::run(&registry, &set, &subject, None, kinds.as_deref(), "shadow:");
            let latency = started.elapsed().as_secs_f64() * 1e3;
            let shadow: Vec<i64> = out.list.ids.iter().copied().take(top_n).collect();
            let errors = out
                .trace
                .iter()
                .filter(|t| t.status == TraceStatus::Failed)
                .count() as u64;
            this.record(user_id, &served, shadow, errors, latency);
            this.in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn record(&self, user_id: i64, live: &[i64], shadow: Vec<i64>, errors: u64, latency: f64) {
        let a: HashSet<i64> = live.iter().copied().collect();
        let b: HashSet<i64> = shadow.iter().copied().collect();
        let union = a.union(&b).count();
        let overlap = if union == 0 {
            1.0
        } else {
            a.intersection(&b).count() as f64 / union as f64
        };
        let mut s = self.stats.lock().expect("not poisoned");
        s.compared += 1;
        s.overlap_sum += overlap;
        if let Some(rho) = rank_correlation(live, &shadow) {
            s.correlation_sum += rho;
            s.correlated += 1;
        }
        s.added += b.difference(&a).count() as u64;
        s.dropped += a.difference(&b).count() as u64;
        s.errors += errors;
        s.latency_ms_sum += latency;
        s.latency_ms_max = s.latency_ms_max.max(latency);
        if live == shadow.as_slice() {
            s.identical += 1;
        } else {
            if s.examples.len() >= EXAMPLES {
                s.examples.remove(0);
            }
            s.examples.push(Difference {
                user_id,
                live: live.to_vec(),
                shadow,
            });
        }
    }

    pub fn report(&self) -> ShadowReport {
        let s = self.stats.lock().expect("not poisoned");
        let per = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        ShadowReport {
            name: self.name.clone(),
            revision: self.revision.clone(),
            started_at: self.started_at,
            compared: s.compared,
            skipped: s.skipped,
            identical: s.identical,
            mean_overlap: per(s.overlap_sum, s.compared),
            mean_rank_correlation: if s.correlated == 0 {
                1.0
            } else {
                s.correlation_sum / s.correlated as f64
            },
            items_added: s.added,
            items_dropped: s.dropped,
            errors: s.errors,
            mean_latency_ms: per(s.latency_ms_sum, s.compared),
            max_latency_ms: s.latency_ms_max,
            examples: s.examples.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_correlation_is_one_for_the_same_order_and_minus_one_reversed() {
        assert_eq!(rank_correlation(&[1, 2, 3], &[1, 2, 3]), Some(1.0));
        assert_eq!(rank_correlation(&[1, 2, 3], &[3, 2, 1]), Some(-1.0));
        assert_eq!(rank_correlation(&[1, 2, 3], &[9, 2, 8]), None);
        // Items only one list has do not count.
        assert_eq!(rank_correlation(&[1, 2, 3], &[2, 7, 3]), Some(1.0));
    }
}
