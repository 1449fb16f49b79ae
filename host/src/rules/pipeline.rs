//! Runs a rule set over one candidate list: by priority, each rule once
//! with the whole list and only the inputs it declared, each outcome
//! checked against the rule kind's contract, each failure contained by the
//! rule's policy, everything recorded in a trace. Promote rules run last
//! (they see the final list); what they ask for is vetted and placed by
//! [`place_promotions`] once the service has looked the items up.

use std::{
    collections::HashSet,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use recengine_rules_sdk::{self as sdk, Kind, Placement, contract};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    engine::{Call, Contract, Failure},
    input::{Subject, encode::Encoded, legacy::Legacy, rows::RowSource},
    registry::{ActiveRule, FailurePolicy, RuleRegistry, RuleSet},
};

pub use sdk::contract::List;

/// Most items one promote rule may place in one response.
pub const MAX_PROMOTED_PER_RULE: usize = 5;
/// Most promoted items one response may hold, all rules together.
pub const MAX_PROMOTED_PER_REQUEST: usize = 10;
/// Filters every promoted item passes besides the fail-closed (safety)
/// ones, unless its rule's bundle opts out of them by name.
pub const PROMOTION_FILTERS: &[&str] = &["filter_out_of_stock", "filter_excluded"];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Boost {
    pub item_id: i64,
    pub before: f64,
    pub after: f64,
    /// Where the item is in the response (1 is the first), when shown.
    pub response_rank: Option<usize>,
}

/// A move in the working list: the over-fetched candidates as the rules
/// see them, before the response is cut to `top_n`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Move {
    pub item_id: i64,
    /// Working-list position before this rule (0 is the first candidate).
    pub from: usize,
    /// Working-list position after this rule.
    pub to: usize,
    /// Where the item is in the response (1 is the first), when shown.
    pub response_rank: Option<usize>,
}

/// Fills in each traced boost's and move's `response_rank` from the
/// response's ids (best first).
pub fn rank_in_response(trace: &mut [RuleTrace], response: &[i64]) {
    let rank = |id: i64| response.iter().position(|&r| r == id).map(|p| p + 1);
    for entry in trace {
        for b in &mut entry.boosted {
            b.response_rank = rank(b.item_id);
        }
        for m in &mut entry.moved {
            m.response_rank = rank(m.item_id);
        }
    }
}

/// What became of one item a promote rule asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    /// In the list, at `position`.
    Placed,
    /// No such item, or it was deleted.
    UnknownItem,
    /// A filter it must pass removed it (`filter` names it).
    Filtered,
    /// Past the rule's or the request's cap.
    Capped,
    /// Asked for a position past the end of the response (`top_n`).
    OutOfRange,
    /// Another promotion placed the same item first.
    Duplicate,
}

/// Where a promoted item went, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PromotedTrace {
    pub item_id: i64,
    /// The position the rule asked for (1 is the top).
    pub requested_position: u32,
    /// Where it landed (1 is the top), when placed.
    pub position: Option<usize>,
    pub status: PromotionStatus,
    /// The filter that removed it.
    pub filter: Option<String>,
}

/// A rule's kind as the API names it (the SDK's [`Kind`], which the SDK
/// keeps free of serialization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Filter,
    Boost,
    Rerank,
    Promote,
}

impl From<Kind> for RuleKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Filter => RuleKind::Filter,
            Kind::Boost => RuleKind::Boost,
            Kind::Rerank => RuleKind::Rerank,
            Kind::Promote => RuleKind::Promote,
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
    /// What it read: `scope.name` for each declared input.
    #[serde(serialize_with = "labels")]
    #[schema(value_type = Vec<String>)]
    pub inputs: Arc<[String]>,
    pub duration_ms: f64,
    pub dropped: Vec<i64>,
    pub boosted: Vec<Boost>,
    pub moved: Vec<Move>,
    /// For a promote rule: each item it asked for and what became of it.
    pub promoted: Vec<PromotedTrace>,
    /// For a failure: its cause (`timeout`, `out_of_memory`, `trap`,
    /// `rule_error`, `contract`, ...), the message, and the policy applied.
    pub error: Option<String>,
    pub cause: Option<&'static str>,
    pub policy: Option<FailurePolicy>,
}

/// An item a promote rule asked for, before it is vetted and placed.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub rule: String,
    pub placement: Placement,
    /// Where the rule's entry is in the trace.
    trace: usize,
}

pub struct PipelineOutput {
    /// The candidates left, in order, with their scores.
    pub list: List,
    pub trace: Vec<RuleTrace>,
    /// A fail-closed rule failed: the list was emptied rather than shown
    /// unvetted. Names the rule.
    pub blocked_by: Option<String>,
    pub rule_set_version: u64,
    /// What promote rules asked for, capped per rule, in the order the
    /// rules ran; [`place_promotions`] turns them into positions.
    pub promotions: Vec<Promotion>,
    /// Placed promoted items: (item id, rule).
    pub promoted: Vec<(i64, String)>,
}

impl PipelineOutput {
    /// The distinct ids promote rules asked for, in order.
    pub fn promotion_ids(&self) -> Vec<i64> {
        let mut seen = HashSet::new();
        self.promotions
            .iter()
            .map(|p| p.placement.item_id)
            .filter(|id| seen.insert(*id))
            .collect()
    }
}

/// A subject encoded once for a rule set: the union of the 0.2 rules'
/// inputs, and 0.1's fixed layout when a 0.1 rule is enabled.
pub struct Encoding {
    encoded: Encoded,
    legacy: Option<Legacy>,
}

impl Encoding {
    /// `rows`: the candidates' kept rows, in the subject's item order (the
    /// subject's items then carry no `item` / `item-stat` inputs); only for
    /// a set without 0.1 rules, whose layout is read from the subject.
    pub fn new(set: &RuleSet, subject: &Subject, rows: Option<&[Arc<dyn RowSource>]>) -> Self {
        debug_assert!(rows.is_none() || !set.has_legacy);
        Self {
            encoded: Encoded::new(subject, &set.plan, rows.map(|r| (&set.rows, r))),
            legacy: set.has_legacy.then(|| Legacy::new(subject)),
        }
    }

    /// The request `rule` receives for the candidates of `list`; `last`:
    /// per slot, whether no later call reads it (its column is then taken,
    /// not copied).
    fn call(
        &mut self,
        rule: &ActiveRule,
        slots: &[usize],
        last: Option<&[bool]>,
        list: &List,
    ) -> Call {
        match rule.compiled.contract {
            Contract::V0_2 => Call::V0_2(self.encoded.request(slots, last, list, &rule.config)),
            Contract::V0_1 => {
                let config = rule
                    .config
                    .iter()
                    .map(|v| match v {
                        sdk::ParamValue::Number(n) => *n,
                        sdk::ParamValue::Flag(b) => f64::from(u8::from(*b)),
                        _ => 0.0,
                    })
                    .collect();
                let legacy = self
                    .legacy
                    .as_ref()
                    .expect("a set with a 0.1 rule encodes the 0.1 layout");
                Call::V0_1(Box::new(legacy.request(list, config)))
            }
        }
    }
}

fn labels<S: serde::Serializer>(labels: &Arc<[String]>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(labels.iter())
}

fn new_entry(rule: &ActiveRule) -> RuleTrace {
    let meta = &rule.compiled.metadata;
    RuleTrace {
        rule: meta.name.clone(),
        kind: meta.kind.into(),
        priority: rule.priority,
        status: TraceStatus::Skipped,
        reason: meta.description.clone(),
        inputs: rule.compiled.input_labels.clone(),
        duration_ms: 0.0,
        dropped: Vec::new(),
        boosted: Vec::new(),
        moved: Vec::new(),
        promoted: Vec::new(),
        error: None,
        cause: None,
        policy: None,
    }
}

/// Runs `set` over `subject`'s items (in their order, with their scores).
/// `kinds`: only rules of these kinds run (`None`: all). Per-rule counters
/// are kept under `counter_prefix` + name (shadow evaluation counts apart
/// from live traffic).
pub fn run(
    registry: &RuleRegistry,
    set: &RuleSet,
    subject: &Subject,
    rows: Option<&[Arc<dyn RowSource>]>,
    kinds: Option<&[Kind]>,
    counter_prefix: &str,
) -> PipelineOutput {
    let mut encoding = Encoding::new(set, subject, rows);
    // One sandbox for the request: the rules share its setup, each in an
    // instance of its own.
    let mut session = registry.engine.session();
    let mut list = List::new(
        subject.items.iter().map(|i| i.id).collect(),
        subject.items.iter().map(|i| i.score).collect(),
    );
    let mut trace: Vec<RuleTrace> = set.rules.iter().map(new_entry).collect();
    let mut blocked_by = None;
    let mut promotions = Vec::new();
    // Promote rules last, in priority order among themselves: they see
    // the list every other rule made.
    let order = (0..set.rules.len())
        .filter(|&i| set.rules[i].compiled.metadata.kind != Kind::Promote)
        .chain(
            (0..set.rules.len()).filter(|&i| set.rules[i].compiled.metadata.kind == Kind::Promote),
        );
    for index in order.collect::<Vec<_>>() {
        let rule = &set.rules[index];
        let meta = &rule.compiled.metadata;
        let entry = &mut trace[index];
        let wanted = kinds.is_none_or(|k| k.contains(&meta.kind));
        if !rule.enabled || !wanted || blocked_by.is_some() || list.is_empty() {
            continue;
        }
        let counters = if counter_prefix.is_empty() {
            registry.counters(&meta.name)
        } else {
            registry.counters(&format!("{counter_prefix}{}", meta.name))
        };
        let started = Instant::now();
        // Applied in place: on a violation the contract leaves the list
        // untouched.
        let result = session
            .apply(
                &rule.compiled,
                &encoding.call(rule, &set.slots[index], Some(&set.last_use[index]), &list),
                &rule.limits,
            )
            .and_then(|outcome| {
                contract::apply(meta.kind, &mut list, outcome)
                    .map_err(|v| Failure::Contract(v.to_string()))
            });
        let elapsed = started.elapsed();
        entry.duration_ms = elapsed.as_secs_f64() * 1000.0;
        counters.calls.fetch_add(1, Ordering::Relaxed);
        counters
            .total_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(effect) => {
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
                        response_rank: None,
                    })
                    .collect();
                entry.moved = effect
                    .moved
                    .into_iter()
                    .map(|(item_id, from, to)| Move {
                        item_id,
                        from,
                        to,
                        response_rank: None,
                    })
                    .collect();
                for (n, placement) in effect.promoted.into_iter().enumerate() {
                    if n < MAX_PROMOTED_PER_RULE {
                        promotions.push(Promotion {
                            rule: meta.name.clone(),
                            placement,
                            trace: index,
                        });
                    } else {
                        entry.promoted.push(PromotedTrace {
                            item_id: placement.item_id,
                            requested_position: placement.position,
                            position: None,
                            status: PromotionStatus::Capped,
                            filter: None,
                        });
                    }
                }
            }
            Err(failure) => {
                // Logged at most once a minute per rule, with the count of
                // failures since the last line; every one is counted.
                if let Some(not_logged) = counters.failure(failure.cause()) {
                    tracing::warn!(
                        rule = %meta.name,
                        cause = failure.cause(),
                        error = %failure,
                        policy = ?rule.policy,
                        failures_not_logged = not_logged,
                        "rule failed"
                    );
                }
                entry.status = TraceStatus::Failed;
                entry.error = Some(format!("{} {failure}", meta.name));
                entry.cause = Some(failure.cause());
                entry.policy = Some(rule.policy);
                if rule.policy == FailurePolicy::FailClosed {
                    entry.dropped = list.ids.clone();
                    list.reorder(&[]);
                    promotions.clear();
                    blocked_by = Some(meta.name.clone());
                }
            }
        }
    }
    PipelineOutput {
        list,
        trace,
        blocked_by,
        rule_set_version: set.version,
        promotions,
        promoted: Vec::new(),
    }
}

/// The filters a promoted item must pass: every enabled filter whose
/// policy is fail-closed (the safety filters, never skippable), and
/// [`PROMOTION_FILTERS`] unless the promoting rule opted out.
fn vetting_filters(set: &RuleSet) -> Vec<usize> {
    (0..set.rules.len())
        .filter(|&i| {
            let rule = &set.rules[i];
            rule.enabled
                && rule.compiled.metadata.kind == Kind::Filter
                && (rule.policy == FailurePolicy::FailClosed
                    || PROMOTION_FILTERS.contains(&rule.name()))
        })
        .collect()
}

/// Vets and places `out.promotions` in the first `shown` positions (the
/// response's length: a placement past it would not be seen). `found`
/// holds the promoted items that exist (score unused), with the inputs of
/// `set`'s plan.
/// Each item passes the vetting filters (a filter that fails removes every
/// promoted item: nothing unvetted is shown), then is placed at its
/// position, moving rather than duplicating an organic entry, within the
/// per-request cap.
pub fn place_promotions(
    registry: &RuleRegistry,
    set: &RuleSet,
    out: &mut PipelineOutput,
    found: &Subject,
    shown: usize,
    counter_prefix: &str,
) {
    let promotions = std::mem::take(&mut out.promotions);
    if promotions.is_empty() || out.blocked_by.is_some() {
        return;
    }
    let known: HashSet<i64> = found.items.iter().map(|i| i.id).collect();
    // Which filter removed which item: each vetting filter sees every
    // found item once.
    let mut encoding = Encoding::new(set, found, None);
    let mut removed_by: Vec<(i64, String, bool)> = Vec::new();
    let all = List::new(
        found.items.iter().map(|i| i.id).collect(),
        found.items.iter().map(|_| 0.0).collect(),
    );
    let mut session = registry.engine.session();
    for index in vetting_filters(set) {
        if all.is_empty() {
            break;
        }
        let rule = &set.rules[index];
        let safety = rule.policy == FailurePolicy::FailClosed;
        let outcome = session
            .apply(
                &rule.compiled,
                &encoding.call(rule, &set.slots[index], None, &all),
                &rule.limits,
            )
            .and_then(|outcome| {
                let mut left = all.clone();
                contract::apply(Kind::Filter, &mut left, outcome)
                    .map_err(|v| Failure::Contract(v.to_string()))
            });
        match outcome {
            Ok(effect) => {
                for id in effect.dropped {
                    removed_by.push((id, rule.name().to_string(), safety));
                }
            }
            Err(failure) => {
                let counters = registry.counters(&format!("{counter_prefix}{}", rule.name()));
                if let Some(not_logged) = counters.failure(failure.cause()) {
                    tracing::warn!(rule = %rule.name(), error = %failure, failures_not_logged = not_logged, "a filter failed while vetting promoted items; none is shown");
                }
                for &id in &all.ids {
                    removed_by.push((id, rule.name().to_string(), true));
                }
            }
        }
    }
    let mut placements: Vec<(Placement, String)> = Vec::new();
    let mut seen = HashSet::new();
    for p in promotions {
        let rule = &set.rules[p.trace];
        let id = p.placement.item_id;
        let filter = removed_by
            .iter()
            .find(|(item, name, safety)| {
                *item == id && (*safety || !rule.promote_skips.contains(name))
            })
            .map(|(_, name, _)| name.clone());
        let status = if !known.contains(&id) {
            PromotionStatus::UnknownItem
        } else if filter.is_some() {
            PromotionStatus::Filtered
        } else if p.placement.position as usize > shown {
            PromotionStatus::OutOfRange
        } else if !seen.insert(id) {
            PromotionStatus::Duplicate
        } else if placements.len() >= MAX_PROMOTED_PER_REQUEST {
            PromotionStatus::Capped
        } else {
            placements.push((p.placement, p.rule.clone()));
            PromotionStatus::Placed
        };
        out.trace[p.trace].promoted.push(PromotedTrace {
            item_id: id,
            requested_position: p.placement.position,
            position: None,
            status,
            filter,
        });
    }
    if placements.is_empty() {
        return;
    }
    let asked: Vec<Placement> = placements.iter().map(|(p, _)| *p).collect();
    let (ids, landed) = contract::place(&out.list.ids, &asked);
    // A promoted item takes the score of the entry just above it (the top
    // score at position 1), so the list's scores still read top to bottom.
    let organic: std::collections::HashMap<i64, f64> = out.list.pairs().collect();
    let promoted_ids: HashSet<i64> = asked.iter().map(|p| p.item_id).collect();
    let mut organic_scores = out
        .list
        .ids
        .iter()
        .filter(|id| !promoted_ids.contains(id))
        .map(|id| organic[id]);
    let mut scores = Vec::with_capacity(ids.len());
    let mut last = out.list.scores.first().copied().unwrap_or(0.0);
    for id in &ids {
        if promoted_ids.contains(id) {
            scores.push(last);
        } else {
            last = organic_scores.next().unwrap_or(last);
            scores.push(last);
        }
    }
    out.list = List {
        rows: vec![usize::MAX; ids.len()],
        ids,
        scores,
    };
    for ((placement, rule), position) in placements.into_iter().zip(landed) {
        registry
            .counters(&format!("{counter_prefix}{rule}"))
            .promoted
            .fetch_add(1, Ordering::Relaxed);
        if let Some(index) = set.rules.iter().position(|r| r.name() == rule)
            && let Some(t) = out.trace[index]
                .promoted
                .iter_mut()
                .find(|t| t.item_id == placement.item_id && t.status == PromotionStatus::Placed)
        {
            t.position = Some(position);
        }
        out.promoted.push((placement.item_id, rule));
    }
}

/// Calls one rule alone on `subject` (all its items, in order): what a
/// bundle's check and the agreement tests run.
pub fn call_alone(
    registry: &RuleRegistry,
    rule: &ActiveRule,
    subject: &Subject,
) -> Result<sdk::Outcome, Failure> {
    let mut rule = rule.clone();
    rule.enabled = true;
    let set = RuleSet::new(vec![rule], 0);
    let rule = &set.rules[0];
    let mut encoding = Encoding::new(&set, subject, None);
    let list = List::new(
        subject.items.iter().map(|i| i.id).collect(),
        subject.items.iter().map(|i| i.score).collect(),
    );
    registry.engine.apply_within(
        &rule.compiled,
        &encoding.call(rule, &set.slots[0], None, &list),
        &rule.limits,
    )
}

/// Runs one rule alone on `subject` and applies its outcome: a bundle's
/// check of each rule before it goes live.
pub fn try_rule(
    registry: &RuleRegistry,
    rule: &ActiveRule,
    subject: &Subject,
) -> Result<contract::Effect, String> {
    let outcome =
        call_alone(registry, rule, subject).map_err(|f| format!("the dry run failed: {f}"))?;
    let mut list = List::new(
        subject.items.iter().map(|i| i.id).collect(),
        subject.items.iter().map(|i| i.score).collect(),
    );
    contract::apply(rule.compiled.metadata.kind, &mut list, outcome).map_err(|v| {
        format!(
            "the dry run broke the {} contract: {v}",
            rule.compiled.metadata.kind.as_str()
        )
    })
}
