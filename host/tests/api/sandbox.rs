//! The per-request sandbox: a request's rules share a store, never state.
//! Driven through the pipeline (the same `pipeline::run` a recommendation
//! and a dry run call), with the hostile fixtures: `hostile_boost` mode 6
//! counts its calls in a static and rescores every candidate to the count,
//! so any instance, memory or static carried from one rule or request to
//! the next shows up as a score of 2 or more.

use std::time::Duration;

use recengine::rules::{
    engine::{Limits, RuleEngine},
    pipeline::{self, PipelineOutput, TraceStatus},
    registry::{ActiveRule, FailurePolicy, RuleRegistry, RuleSet},
};
use recengine_rules_sdk::{
    ParamValue,
    testing::{Item, RequestBuilder, Subject},
};

use crate::helpers::wasm;

fn registry() -> RuleRegistry {
    // Room for a loaded test machine (see `rules::hostile_rules_are_contained`).
    let engine = RuleEngine::new(Limits {
        deadline: Duration::from_millis(250),
        ..Limits::default()
    })
    .unwrap();
    RuleRegistry::with_builtins(engine).unwrap()
}

/// `bytes` as a fail-open rule with the given `mode` and priority.
fn rule(registry: &RuleRegistry, bytes: &[u8], mode: f64, priority: i32) -> ActiveRule {
    let compiled = registry.engine.load(bytes).unwrap();
    let mut rule = ActiveRule::from_compiled(compiled, "test", registry.engine.limits());
    rule.config = vec![ParamValue::Number(mode)];
    rule.priority = priority;
    rule.policy = FailurePolicy::FailOpen;
    rule
}

fn subject(n: i64) -> Subject {
    let mut b = RequestBuilder::new().context(None, None, None, false, 1_800_000_000_000, &[]);
    for i in 0..n {
        b = b.item(Item::new(i, 10.0 - i as f64 / 10.0).category("c"));
    }
    b.build()
}

fn status(out: &PipelineOutput, index: usize) -> (TraceStatus, Option<&'static str>) {
    (out.trace[index].status, out.trace[index].cause)
}

/// The same counting component twice in one request, and again in the
/// next requests: every call is its instance's first.
#[test]
fn no_state_carries_between_rules_or_requests() {
    let registry = registry();
    let boost = wasm::hostile("hostile_boost");
    // Two rules from one component: the same code, the same static, so
    // only separate instances keep the second call's count at 1.
    let set = RuleSet::new(
        vec![
            rule(&registry, &boost, 6.0, 30),
            rule(&registry, &boost, 6.0, 10),
        ],
        1,
    );
    for request in 0..3 {
        let out = pipeline::run(&registry, &set, &subject(5), None, "");
        assert_eq!(status(&out, 0), (TraceStatus::Applied, None));
        assert_eq!(status(&out, 1), (TraceStatus::Applied, None));
        assert!(
            out.list.scores.iter().all(|&s| s == 1.0),
            "request {request}: {:?}",
            out.list.scores
        );
        // The second rule found the scores the first left (1.0) and, being
        // on its first call too, changed nothing.
        assert!(out.trace[1].boosted.is_empty(), "request {request}");
    }
}

/// A trap, a timeout and a memory cap hit in the middle of a request: each
/// is its rule's failure alone, under that rule's own limits, and the
/// rules after it run in a clean store.
#[test]
fn a_failing_rule_does_not_poison_the_rules_after_it() {
    let registry = registry();
    let boost = wasm::hostile("hostile_boost");
    let filter = wasm::hostile("hostile_filter");
    let mut looping = rule(&registry, &filter, 0.0, 80);
    // Tighter than the engine's 250 ms: a bundle's per-rule deadline.
    looping.limits.deadline = Duration::from_millis(20);
    let mut hoarding = rule(&registry, &filter, 1.0, 60);
    // Tighter than the engine's 32 MiB: a bundle's per-rule memory cap.
    hoarding.limits.memory_bytes = 4 << 20;
    let set = RuleSet::new(
        vec![
            rule(&registry, &boost, 6.0, 100),
            rule(&registry, &filter, 2.0, 90), // recurses: stack overflow
            rule(&registry, &boost, 6.0, 85),
            looping,
            rule(&registry, &boost, 6.0, 70),
            hoarding,
            rule(&registry, &boost, 6.0, 50),
            rule(&registry, &boost, 0.0, 40), // panics
            rule(&registry, &boost, 6.0, 30),
            rule(&registry, &filter, 6.0, 20), // behaves
        ],
        1,
    );
    let started = std::time::Instant::now();
    let out = pipeline::run(&registry, &set, &subject(8), None, "");
    let elapsed = started.elapsed();
    let expected = [
        (TraceStatus::Applied, None),
        (TraceStatus::Failed, Some("trap")),
        (TraceStatus::Applied, None),
        (TraceStatus::Failed, Some("timeout")),
        (TraceStatus::Applied, None),
        (TraceStatus::Failed, Some("out_of_memory")),
        (TraceStatus::Applied, None),
        (TraceStatus::Failed, Some("trap")),
        (TraceStatus::Applied, None),
        (TraceStatus::Applied, None),
    ];
    for (index, want) in expected.into_iter().enumerate() {
        assert_eq!(
            status(&out, index),
            want,
            "rule {index}: {:?}",
            out.trace[index]
        );
    }
    // The panic's message came through (this component has WASI's stderr).
    let panic = out.trace[7].error.as_deref().unwrap();
    assert!(panic.contains("panicked on purpose"), "{panic}");
    // Every counting call was its instance's first, whatever failed before.
    assert!(
        out.list.scores.iter().all(|&s| s == 1.0),
        "{:?}",
        out.list.scores
    );
    assert_eq!(out.list.len(), 8, "fail-open: nothing dropped");
    // The looping rule was stopped by its own 20 ms, not the engine's 250.
    assert!(
        out.trace[3].duration_ms < 200.0,
        "the 20 ms deadline held: {:?}",
        out.trace[3].duration_ms
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

/// The built-ins (components that import nothing: no WASI context) and a
/// component that imports WASI share one request's store; the WASI one
/// still finds nothing outside (its probe doubles every score only when
/// files, environment and network all fail).
#[test]
fn builtins_and_a_wasi_rule_share_a_store() {
    let registry = registry();
    let boost = wasm::hostile("hostile_boost");
    let mut rules = registry.snapshot().rules.clone();
    assert!(
        rules.iter().all(|r| !r.compiled.wasi),
        "built-ins import no WASI"
    );
    let probing = rule(&registry, &boost, 4.0, 55);
    assert!(probing.compiled.wasi);
    rules.push(probing);
    let set = RuleSet::new(rules, 1);
    let out = pipeline::run(&registry, &set, &subject(40), None, "");
    for (index, rule) in set.rules.iter().enumerate() {
        assert_eq!(
            status(&out, index),
            (TraceStatus::Applied, None),
            "{}: {:?}",
            rule.name(),
            out.trace[index]
        );
    }
    let probe = set
        .rules
        .iter()
        .position(|r| r.name() == "hostile_boost")
        .unwrap();
    let boosted = &out.trace[probe].boosted;
    assert!(!boosted.is_empty());
    assert!(
        boosted.iter().all(|b| b.after == 2.0 * b.before),
        "{boosted:?}"
    );
}
