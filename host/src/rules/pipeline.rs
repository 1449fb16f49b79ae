//! Runs a rule set over one candidate list: by priority, each rule once
//! with the whole list, each outcome checked against the rule kind's
//! contract, each failure contained by the rule's policy, everything
//! recorded in a trace.

use std::{sync::atomic::Ordering, time::Instant};

use recengine_rules_sdk::{self as sdk, Kind, contract};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    engine::Failure,
    input::to_wit,
    registry::{FailurePolicy, RuleRegistry, RuleSet},
};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Boost {
    pub item_id: i64,
    pub before: f64,
    pub after: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Move {
    pub item_id: i64,
    pub from: usize,
    pub to: usize,
}

/// A rule's kind as the API names it (the SDK's [`Kind`], which the SDK
/// keeps free of serialization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Filter,
    Boost,
    Rerank,
}

impl From<Kind> for RuleKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Filter => RuleKind::Filter,
            Kind::Boost => RuleKind::Boost,
            Kind::Rerank => RuleKind::Rerank,
        }
    }
}

/// What happened to one rule on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceStatus {
    Applied,
    Failed,
    /// Disabled, not among the kinds asked for, or not reached (the list
    /// was empty or already blocked).
    Skipped,
}

/// What one rule did to the list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleTrace {
    pub rule: String,
    pub kind: RuleKind,
    pub priority: i32,
    pub status: TraceStatus,
    /// What the rule does (its metadata's description): the "why".
    pub reason: String,
    pub duration_ms: f64,
    pub dropped: Vec<i64>,
    pub boosted: Vec<Boost>,
    pub moved: Vec<Move>,
    /// For a failure: its cause (`timeout`, `out_of_memory`, `trap`,
    /// `rule_error`, `contract`, ...), the message, and the policy applied.
    pub error: Option<String>,
    pub cause: Option<&'static str>,
    pub policy: Option<FailurePolicy>,
}

pub struct PipelineOutput {
    pub candidates: sdk::Candidates,
    pub trace: Vec<RuleTrace>,
    /// A fail-closed rule failed: the list was emptied rather than shown
    /// unvetted. Names the rule.
    pub blocked_by: Option<String>,
    pub rule_set_version: u64,
}

/// Runs `set` over `request`. `kinds`: only rules of these kinds run
/// (`None`: all).
pub fn run(
    registry: &RuleRegistry,
    set: &RuleSet,
    request: sdk::Request,
    kinds: Option<&[Kind]>,
) -> PipelineOutput {
    run_counted(registry, set, request, kinds, "")
}

/// `run`, with the per-rule counters kept under `counter_prefix` + name
/// (shadow evaluation counts apart from live traffic).
pub fn run_counted(
    registry: &RuleRegistry,
    set: &RuleSet,
    request: sdk::Request,
    kinds: Option<&[Kind]>,
    counter_prefix: &str,
) -> PipelineOutput {
    let engine = &registry.engine;
    let mut request = request;
    let mut trace = Vec::with_capacity(set.rules.len());
    let mut blocked_by = None;
    for rule in &set.rules {
        let meta = &rule.compiled.metadata;
        let mut entry = RuleTrace {
            rule: meta.name.clone(),
            kind: meta.kind.into(),
            priority: rule.priority,
            status: TraceStatus::Skipped,
            reason: meta.description.clone(),
            duration_ms: 0.0,
            dropped: Vec::new(),
            boosted: Vec::new(),
            moved: Vec::new(),
            error: None,
            cause: None,
            policy: None,
        };
        let wanted = kinds.is_none_or(|k| k.contains(&meta.kind));
        if !rule.enabled || !wanted || blocked_by.is_some() || request.candidates.is_empty() {
            trace.push(entry);
            continue;
        }
        let counters = registry.counters(&format!("{counter_prefix}{}", meta.name));
        let started = Instant::now();
        let result = engine
            .apply_within(
                &rule.compiled,
                &to_wit(&request, &rule.config),
                &rule.limits,
            )
            .and_then(|outcome| {
                let mut candidates = request.candidates.clone();
                contract::apply(meta.kind, &mut candidates, outcome)
                    .map(|effect| (candidates, effect))
                    .map_err(|v| Failure::Contract(v.to_string()))
            });
        let elapsed = started.elapsed();
        entry.duration_ms = elapsed.as_secs_f64() * 1000.0;
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .total_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok((candidates, effect)) => {
                entry.status = TraceStatus::Applied;
                counters
                    .dropped
                    .fetch_add(effect.dropped.len() as u64, Ordering::Relaxed);
                counters
                    .boosted
                    .fetch_add(effect.rescored.len() as u64, Ordering::Relaxed);
                counters
                    .moved
                    .fetch_add(effect.moved.len() as u64, Ordering::Relaxed);
                entry.dropped = effect.dropped;
                entry.boosted = effect
                    .rescored
                    .into_iter()
                    .map(|(item_id, before, after)| Boost {
                        item_id,
                        before,
                        after,
                    })
                    .collect();
                entry.moved = effect
                    .moved
                    .into_iter()
                    .map(|(item_id, from, to)| Move { item_id, from, to })
                    .collect();
                request.candidates = candidates;
            }
            Err(failure) => {
                counters.failure(failure.cause());
                tracing::warn!(
                    rule = %meta.name,
                    cause = failure.cause(),
                    error = %failure,
                    policy = ?rule.policy,
                    "rule failed"
                );
                entry.status = TraceStatus::Failed;
                entry.error = Some(format!("{} {failure}", meta.name));
                entry.cause = Some(failure.cause());
                entry.policy = Some(rule.policy);
                if rule.policy == FailurePolicy::FailClosed {
                    entry.dropped = request.candidates.ids.clone();
                    request.candidates.reorder(&[]);
                    blocked_by = Some(meta.name.clone());
                }
            }
        }
        trace.push(entry);
    }
    PipelineOutput {
        candidates: request.candidates,
        trace,
        blocked_by,
        rule_set_version: set.version,
    }
}
