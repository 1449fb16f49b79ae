//! `recengine rules test`: a bundle activated in a throwaway engine (with
//! the built-in rules, as on a server, unless asked otherwise) and run over
//! sample or given candidates. Every check an upload makes applies (load,
//! declared inputs, typed config, limits, the sample dry run); then the
//! whole rule set runs once and each rule's trace is reported. Failing
//! rules, a blocked list or a refused bundle make the check fail, so a
//! rule author's CI can gate on it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::rules::{
    bundle::{Refusal, format, prepare::prepare_rules},
    engine::{Limits, RuleEngine},
    input::{
        RuleContext,
        sample::{self, DryRunCandidate, DryRunUser},
    },
    pipeline::{self, RuleTrace, TraceStatus},
    registry::RuleRegistry,
};

/// What to run the bundle over; `None`s take the sample.
#[derive(Debug, Default)]
pub struct CheckInput {
    pub user: Option<DryRunUser>,
    pub items: Option<Vec<DryRunCandidate>>,
    pub context: RuleContext,
    pub exclude_ids: Vec<i64>,
    /// Run the bundle's rules alone, without the built-in ones.
    pub without_builtins: bool,
}

/// One entry of the result.
#[derive(Debug, Serialize)]
pub struct Ranked {
    pub item_id: i64,
    pub score: f64,
    pub promoted_by: Option<String>,
}

/// What the check found.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub bundle: String,
    pub revision: String,
    /// The bundle's rules and the contract each speaks.
    pub rules: Vec<(String, &'static str)>,
    pub trace: Vec<RuleTrace>,
    pub results: Vec<Ranked>,
    pub blocked_by: Option<String>,
    /// Why the check fails; empty when it passes.
    pub failures: Vec<String>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The report for a terminal: one line per rule, then the list.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "bundle {}@{}: {} rule(s) loaded\n",
            self.bundle,
            self.revision,
            self.rules.len()
        );
        for t in &self.trace {
            let kind = serde_json::to_value(t.kind).unwrap_or_default();
            let status = serde_json::to_value(t.status).unwrap_or_default();
            let _ = write!(
                out,
                "  {:<28} {:<8} {:>6}  {:<8} {:>7.3} ms",
                t.rule,
                kind.as_str().unwrap_or(""),
                t.priority,
                status.as_str().unwrap_or(""),
                t.duration_ms
            );
            if !t.dropped.is_empty() {
                let _ = write!(out, "  dropped {:?}", t.dropped);
            }
            if !t.boosted.is_empty() {
                let ids: Vec<i64> = t.boosted.iter().map(|b| b.item_id).collect();
                let _ = write!(out, "  boosted {ids:?}");
            }
            if !t.moved.is_empty() {
                let _ = write!(out, "  moved {}", t.moved.len());
            }
            for p in &t.promoted {
                let status = serde_json::to_value(p.status).unwrap_or_default();
                let _ = write!(
                    out,
                    "  promoted {} -> {} ({})",
                    p.item_id,
                    p.position.map_or("-".into(), |n| n.to_string()),
                    status.as_str().unwrap_or("")
                );
            }
            if let Some(e) = &t.error {
                let _ = write!(out, "  error: {e}");
            }
            out.push('\n');
        }
        let list: Vec<String> = self
            .results
            .iter()
            .map(|r| match &r.promoted_by {
                Some(rule) => format!("{} (promoted by {rule})", r.item_id),
                None => format!("{} ({:.3})", r.item_id, r.score),
            })
            .collect();
        let _ = writeln!(out, "result: [{}]", list.join(", "));
        if let Some(rule) = &self.blocked_by {
            let _ = writeln!(out, "blocked by {rule}: the list was emptied");
        }
        for f in &self.failures {
            let _ = writeln!(out, "FAILED: {f}");
        }
        out
    }
}

/// Checks `archive` (a packed bundle) as an upload would, then runs it.
/// A refused bundle is an `Err` naming why.
pub fn check_bundle(
    archive: &[u8],
    input: CheckInput,
    now: DateTime<Utc>,
) -> Result<CheckReport, Refusal> {
    let bundle = format::unpack(archive, format::BundleCaps::DEFAULT)?;
    let engine = RuleEngine::new(Limits::default())
        .map_err(|e| Refusal::Invalid(format!("the rule engine: {e:#}")))?;
    let registry = if input.without_builtins {
        RuleRegistry::new(engine)
    } else {
        RuleRegistry::with_builtins(engine)
            .map_err(|e| Refusal::Invalid(format!("the built-in rules: {e:#}")))?
    };
    let rules = prepare_rules(&registry, &bundle, &|_, _| {})?;
    let names: Vec<(String, &'static str)> = rules
        .iter()
        .map(|r| (r.name().to_string(), r.compiled.contract.as_str()))
        .collect();
    registry.replace(
        registry
            .snapshot()
            .rules
            .iter()
            .filter(|r| !names.iter().any(|(n, _)| n == r.name()))
            .cloned()
            .chain(rules)
            .collect(),
    );
    // The sample fills in what is not given: its user and items.
    let sample = sample::sample_subject(now.timestamp_millis());
    let user_given = input.user.is_some();
    let mut subject = sample::subject(
        input.user.unwrap_or_default(),
        &input.context,
        input.items.unwrap_or_default(),
        input.exclude_ids,
        now,
    );
    if subject.items.is_empty() {
        subject.items = sample.items.clone();
    }
    if !user_given {
        subject.user = sample.user;
        subject.user_stats = sample.user_stats;
        subject.user_id = sample.user_id;
    }
    let set = registry.snapshot();
    let mut out = pipeline::run(&registry, &set, &subject, None, None, "");
    if !out.promotions.is_empty() {
        // The catalogue is what was given: promoted ids among the items.
        let found = sample::among(&subject, &out.promotion_ids());
        let shown = subject.items.len();
        pipeline::place_promotions(&registry, &set, &mut out, &found, shown, "");
    }
    let shown: Vec<i64> = out.list.ids.clone();
    pipeline::rank_in_response(&mut out.trace, &shown);
    let mut failures: Vec<String> = out
        .trace
        .iter()
        .filter(|t| t.status == TraceStatus::Failed)
        .map(|t| {
            t.error
                .clone()
                .unwrap_or_else(|| format!("{} failed", t.rule))
        })
        .collect();
    if let Some(rule) = &out.blocked_by {
        failures.push(format!("{rule} blocked the list (fail-closed)"));
    }
    let promoted: std::collections::HashMap<i64, String> = out.promoted.iter().cloned().collect();
    Ok(CheckReport {
        bundle: bundle.manifest.name.clone(),
        revision: bundle.manifest.revision.clone(),
        rules: names,
        results: out
            .list
            .pairs()
            .map(|(item_id, score)| Ranked {
                item_id,
                score,
                promoted_by: promoted.get(&item_id).cloned(),
            })
            .collect(),
        trace: out.trace,
        blocked_by: out.blocked_by,
        failures,
    })
}
