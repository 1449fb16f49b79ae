//! The current rule set. Readers take a snapshot (`Arc<RuleSet>`) and keep it
//! for the whole request; writers build a new set and swap it in atomically
//! (arc-swap), so a change never alters the rules under a request in flight
//! and readers never wait on a lock.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use recengine_rules_sdk as sdk;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    engine::{CompiledRule, Contract, Limits, RuleEngine, Sizing},
    input::{InputPlan, rows::RowTable},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Skip the failed rule; the list goes on unchanged.
    FailOpen,
    /// Show nothing rather than a list the rule could not vet.
    FailClosed,
}

/// Where a rule came from. Shown as `builtin`, `rules_dir` or
/// `bundle:<name>@<revision>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSource {
    /// Embedded at build time.
    Builtin,
    /// A `*.wasm` file in the rules directory.
    RulesDir,
    /// A revision of a rule bundle.
    Bundle { name: String, revision: String },
    /// Added by a program embedding the library, under its own label.
    Custom(String),
}

impl From<&str> for RuleSource {
    /// Reads the shown form back; any other text is a custom label.
    fn from(text: &str) -> Self {
        match text {
            "builtin" => RuleSource::Builtin,
            "rules_dir" => RuleSource::RulesDir,
            _ => match text
                .strip_prefix("bundle:")
                .and_then(|rest| rest.split_once('@'))
            {
                Some((name, revision)) => RuleSource::Bundle {
                    name: name.to_string(),
                    revision: revision.to_string(),
                },
                None => RuleSource::Custom(text.to_string()),
            },
        }
    }
}

impl RuleSource {
    /// Whether the rule came from any revision of bundle `name`.
    pub fn is_bundle(&self, name: &str) -> bool {
        matches!(self, RuleSource::Bundle { name: n, .. } if n == name)
    }
}

impl fmt::Display for RuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleSource::Builtin => f.write_str("builtin"),
            RuleSource::RulesDir => f.write_str("rules_dir"),
            RuleSource::Bundle { name, revision } => write!(f, "bundle:{name}@{revision}"),
            RuleSource::Custom(label) => f.write_str(label),
        }
    }
}

impl Serialize for RuleSource {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone)]
pub struct ActiveRule {
    pub compiled: Arc<CompiledRule>,
    pub priority: i32,
    pub enabled: bool,
    /// Parameter values, in the order of the metadata's params.
    pub config: Vec<sdk::ParamValue>,
    pub policy: FailurePolicy,
    pub source: RuleSource,
    /// What each call may use (the engine's, or tighter from a bundle).
    pub limits: Limits,
    /// For a promote rule: the non-safety filters its items need not pass
    /// (a bundle manifest's `promote_skip_filters`).
    pub promote_skips: Vec<String>,
}

impl ActiveRule {
    pub fn name(&self) -> &str {
        &self.compiled.metadata.name
    }

    pub fn from_compiled(
        compiled: Arc<CompiledRule>,
        source: impl Into<RuleSource>,
        limits: Limits,
    ) -> Self {
        let m = &compiled.metadata;
        Self {
            priority: m.default_priority,
            enabled: true,
            config: m.default_params(),
            policy: if m.fail_closed {
                FailurePolicy::FailClosed
            } else {
                FailurePolicy::FailOpen
            },
            source: source.into(),
            limits,
            promote_skips: Vec::new(),
            compiled,
        }
    }
}

/// An immutable, priority-ordered set of rules.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<ActiveRule>,
    /// Bumped by every change, so a trace can say which set it ran.
    pub version: u64,
    /// What the enabled rules read, together: gathered once per request.
    pub plan: InputPlan,
    /// Per rule (same order as `rules`): its inputs' slots in `plan`.
    pub slots: Vec<Vec<usize>>,
    /// Per rule and slot (as `slots`): whether no rule after it in a run
    /// reads that slot, so its request may take the column rather than
    /// copy it.
    pub last_use: Vec<Vec<bool>>,
    /// Whether a rule built against contract 0.1 is enabled (its request
    /// is laid out apart).
    pub has_legacy: bool,
    /// Whether a promote rule is enabled (its items are looked up after the
    /// run).
    pub has_promote: bool,
    /// The strings of the candidates' kept rows for `plan`.
    pub rows: RowTable,
    /// Whether every enabled rule is a small component that imports no
    /// WASI, run in a fresh instance (no interpreter, no kept instance): a
    /// pipeline that may run on the request's own thread (see `runner`).
    pub small_only: bool,
    /// The pipeline's recent wall time, µs: a moving average kept by the
    /// runner.
    pub recent_micros: AtomicU64,
}

impl RuleSet {
    /// Orders `rules` (higher priority first; equal priorities keep their
    /// order) and plans their inputs.
    pub fn new(mut rules: Vec<ActiveRule>, version: u64) -> Self {
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let mut plan = InputPlan::default();
        let slots: Vec<Vec<usize>> = rules
            .iter()
            .map(|r| {
                if r.enabled {
                    plan.add(&r.compiled.metadata.inputs)
                } else {
                    Vec::new()
                }
            })
            .collect();
        // A run's order: every rule but promote ones, then those (see
        // `pipeline::run`); walked backwards, a slot's first sight is its
        // last use.
        let is_promote = |r: &ActiveRule| r.compiled.metadata.kind == sdk::Kind::Promote;
        let order: Vec<usize> = (0..rules.len())
            .filter(|&i| !is_promote(&rules[i]))
            .chain((0..rules.len()).filter(|&i| is_promote(&rules[i])))
            .collect();
        let mut seen = vec![false; plan.inputs().len()];
        let mut last_use: Vec<Vec<bool>> = slots.iter().map(|s| vec![false; s.len()]).collect();
        for &i in order.iter().rev() {
            for (k, &slot) in slots[i].iter().enumerate() {
                if !seen[slot] {
                    seen[slot] = true;
                    last_use[i][k] = true;
                }
            }
        }
        let has_legacy = rules
            .iter()
            .any(|r| r.enabled && r.compiled.contract == Contract::V0_1);
        let has_promote = rules
            .iter()
            .any(|r| r.enabled && r.compiled.metadata.kind == sdk::Kind::Promote);
        let small_only = rules.iter().filter(|r| r.enabled).all(|r| {
            r.compiled.sizing == Sizing::Small
                && !r.compiled.imports_wasi
                && !r.limits.reuse_instances
        });
        Self {
            rules,
            version,
            rows: RowTable::new(&plan),
            plan,
            slots,
            last_use,
            has_legacy,
            has_promote,
            small_only,
            recent_micros: AtomicU64::new(0),
        }
    }
}

/// Counters per rule, kept across rule-set versions.
#[derive(Debug, Default)]
pub struct RuleCounters {
    pub calls: AtomicU64,
    pub failures: Mutex<HashMap<&'static str, u64>>,
    pub total_micros: AtomicU64,
    pub dropped: AtomicU64,
    pub boosted: AtomicU64,
    pub moved: AtomicU64,
    /// Promoted items that were placed in a list.
    pub promoted: AtomicU64,
    /// When a failure of this rule was last logged, and how many were not
    /// since: a rule failing on every request (an interpreted rule missing
    /// its deadline under load) logs once a minute, not thousands of times.
    log_gate: Mutex<LogGate>,
}

#[derive(Debug, Default)]
struct LogGate {
    last: Option<Instant>,
    unlogged: u64,
}

/// At most one failure log line per rule in this long.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

impl RuleCounters {
    /// Counts a failure; `Some(n)` when it is to be logged, `n` the
    /// failures not logged since the last line.
    pub fn failure(&self, cause: &'static str) -> Option<u64> {
        self.failure_at(cause, Instant::now())
    }

    fn failure_at(&self, cause: &'static str, now: Instant) -> Option<u64> {
        *self
            .failures
            .lock()
            .expect("not poisoned")
            .entry(cause)
            .or_insert(0) += 1;
        let mut gate = self.log_gate.lock().expect("not poisoned");
        if gate
            .last
            .is_some_and(|last| now.duration_since(last) < FAILURE_LOG_EVERY)
        {
            gate.unlogged += 1;
            return None;
        }
        gate.last = Some(now);
        Some(std::mem::take(&mut gate.unlogged))
    }

    pub fn failures(&self) -> HashMap<&'static str, u64> {
        self.failures.lock().expect("not poisoned").clone()
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

pub struct RuleRegistry {
    pub engine: Arc<RuleEngine>,
    current: ArcSwap<RuleSet>,
    /// Serialises writers (read-modify-swap); readers never take it.
    write: Mutex<()>,
    stats: Mutex<HashMap<String, Arc<RuleCounters>>>,
}

impl RuleRegistry {
    pub fn new(engine: Arc<RuleEngine>) -> Self {
        Self {
            engine,
            current: ArcSwap::from_pointee(RuleSet::default()),
            write: Mutex::new(()),
            stats: Mutex::new(HashMap::new()),
        }
    }

    /// Loads the embedded built-in components.
    pub fn with_builtins(engine: Arc<RuleEngine>) -> anyhow::Result<Self> {
        let registry = Self::new(engine);
        let mut rules = Vec::new();
        for (crate_name, bytes) in super::builtin::BUILTIN_COMPONENTS {
            let compiled = registry
                .engine
                .load(bytes)
                .map_err(|e| anyhow::anyhow!("built-in rule {crate_name}: {e:#}"))?;
            rules.push(ActiveRule::from_compiled(
                compiled,
                RuleSource::Builtin,
                registry.engine.limits(),
            ));
        }
        registry.replace(rules);
        Ok(registry)
    }

    /// Adds every `*.wasm` component in `dir` (the rules directory). A
    /// component that fails to load, or whose name is taken, is skipped and
    /// logged: one broken file must not take the service down.
    pub fn load_dir(&self, dir: &std::path::Path) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        let refused = || {
            crate::telemetry::metrics::METRICS
                .rule_refusals
                .with_label_values(&["rules_dir"])
                .inc()
        };
        let mut loaded = Vec::new();
        for path in paths {
            let result = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| self.engine.load(&bytes));
            let compiled = match result {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %format!("{e:#}"), "rule component refused");
                    refused();
                    continue;
                }
            };
            let name = compiled.metadata.name.clone();
            let added = self.update(|rules| {
                if rules.iter().any(|r| r.name() == name) {
                    return Err(());
                }
                rules.push(ActiveRule::from_compiled(
                    compiled,
                    RuleSource::RulesDir,
                    self.engine.limits(),
                ));
                Ok(())
            });
            match added {
                Ok(()) => {
                    tracing::info!(rule = %name, file = %path.display(), "rule loaded");
                    loaded.push(name);
                }
                Err(()) => {
                    tracing::error!(rule = %name, file = %path.display(), "a rule with this name is already active; file skipped");
                    refused();
                }
            }
        }
        loaded
    }

    /// The set to use for one request.
    pub fn snapshot(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Replaces the whole set.
    pub fn replace(&self, rules: Vec<ActiveRule>) {
        let _guard = self.write.lock().expect("not poisoned");
        self.store(rules);
    }

    fn store(&self, rules: Vec<ActiveRule>) {
        let version = self.current.load().version + 1;
        self.current.store(Arc::new(RuleSet::new(rules, version)));
    }

    /// Applies `change` to a copy of the current rules and swaps it in;
    /// if `change` fails, nothing changes.
    pub fn update<T, E>(
        &self,
        change: impl FnOnce(&mut Vec<ActiveRule>) -> Result<T, E>,
    ) -> Result<T, E> {
        let _guard = self.write.lock().expect("not poisoned");
        let mut rules = self.current.load().rules.clone();
        let out = change(&mut rules)?;
        self.store(rules);
        Ok(out)
    }

    pub fn counters(&self, name: &str) -> Arc<RuleCounters> {
        let mut stats = self.stats.lock().expect("not poisoned");
        // Asked for every rule of every request: no key copied on a hit.
        if let Some(counters) = stats.get(name) {
            return counters.clone();
        }
        stats.entry(name.to_string()).or_default().clone()
    }
}

/// A parameter value as JSON says it: a number, a boolean, a string or a
/// list of strings, read as the parameter's type. A flag also takes 0 or 1
/// (how 0.1 rules and earlier settings wrote it).
pub fn param_from_json(
    param: &sdk::Param,
    value: &serde_json::Value,
) -> Result<sdk::ParamValue, String> {
    use serde_json::Value;
    let name = &param.name;
    let parsed = match (&param.default_value, value) {
        (sdk::ParamValue::Number(_), Value::Number(n)) => n.as_f64().map(sdk::ParamValue::Number),
        (sdk::ParamValue::Flag(_), Value::Bool(b)) => Some(sdk::ParamValue::Flag(*b)),
        (sdk::ParamValue::Flag(_), Value::Number(n)) => match n.as_f64() {
            Some(0.0) => Some(sdk::ParamValue::Flag(false)),
            Some(1.0) => Some(sdk::ParamValue::Flag(true)),
            _ => None,
        },
        (sdk::ParamValue::Text(_), Value::String(s)) => Some(sdk::ParamValue::Text(s.clone())),
        (sdk::ParamValue::Strings(_), Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(sdk::ParamValue::Strings),
        _ => None,
    };
    let value = parsed.ok_or_else(|| {
        format!(
            "{name} must be a {}",
            match param.default_value {
                sdk::ParamValue::Number(_) => "number",
                sdk::ParamValue::Flag(_) => "boolean",
                sdk::ParamValue::Text(_) => "string",
                sdk::ParamValue::Strings(_) => "list of strings",
            }
        )
    })?;
    param.check(&value)?;
    Ok(value)
}

/// A parameter value as JSON.
pub fn param_to_json(value: &sdk::ParamValue) -> serde_json::Value {
    match value {
        sdk::ParamValue::Number(n) => serde_json::json!(n),
        sdk::ParamValue::Flag(b) => serde_json::json!(b),
        sdk::ParamValue::Text(s) => serde_json::json!(s),
        sdk::ParamValue::Strings(v) => serde_json::json!(v),
    }
}

/// Checks values against the metadata's types and bounds; returns them in
/// order, the current ones (or defaults) filled in. Unknown names are
/// refused.
pub fn validate_config<'a>(
    metadata: &sdk::Metadata,
    current: &[sdk::ParamValue],
    changes: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
) -> Result<Vec<sdk::ParamValue>, String> {
    let mut values: Vec<sdk::ParamValue> = metadata
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            current
                .get(i)
                .filter(|v| p.check(v).is_ok())
                .cloned()
                .unwrap_or_else(|| p.default_value.clone())
        })
        .collect();
    for (name, value) in changes {
        let Some(i) = metadata.params.iter().position(|p| &p.name == name) else {
            let known: Vec<&str> = metadata.params.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "{} has no parameter {name:?} (it has: {})",
                metadata.name,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ));
        };
        values[i] = param_from_json(&metadata.params[i], value)?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{FAILURE_LOG_EVERY, RuleCounters, RuleSource};

    #[test]
    fn a_failing_rule_is_logged_once_a_minute_and_counted_every_time() {
        let counters = RuleCounters::default();
        let start = Instant::now();
        assert_eq!(counters.failure_at("timeout", start), Some(0));
        for s in 1..=100 {
            let now = start + Duration::from_millis(s * 500);
            assert_eq!(counters.failure_at("timeout", now), None, "{s}");
        }
        assert_eq!(counters.failures()["timeout"], 101);
        let later = start + FAILURE_LOG_EVERY + Duration::from_millis(1);
        assert_eq!(counters.failure_at("trap", later), Some(100));
        assert_eq!(counters.failure_at("trap", later), None);
    }

    #[test]
    fn a_source_reads_back_from_how_it_is_shown() {
        let bundle = RuleSource::Bundle {
            name: "shop".into(),
            revision: "2026-11@a".into(),
        };
        for source in [
            RuleSource::Builtin,
            RuleSource::RulesDir,
            bundle,
            RuleSource::Custom("test".into()),
        ] {
            assert_eq!(RuleSource::from(source.to_string().as_str()), source);
        }
        assert_eq!(
            serde_json::to_value(RuleSource::Bundle {
                name: "shop".into(),
                revision: "1".into()
            })
            .unwrap(),
            "bundle:shop@1"
        );
    }
}

#[cfg(test)]
mod param_tests {
    use recengine_rules_sdk::{Kind, Metadata, Param, ParamValue};
    use serde_json::json;

    use super::validate_config;

    #[test]
    fn params_are_checked_by_type_bounds_and_allowed_values() {
        let m = Metadata::new("r", Kind::Filter, 1, "")
            .param(Param::number("factor", "", 1.0, 0.0, 10.0))
            .param(Param::flag("strict", "", false))
            .param(Param::text("mode", "", "soft").allowed(&["soft", "hard"]))
            .param(Param::strings("brands", "", &[]));
        let current = m.default_params();
        let set =
            |k: &str, v: serde_json::Value| validate_config(&m, &current, [(&k.to_string(), &v)]);
        assert_eq!(
            set("factor", json!(2.5)).unwrap()[0],
            ParamValue::Number(2.5)
        );
        assert!(
            set("factor", json!(11))
                .unwrap_err()
                .contains("between 0 and 10")
        );
        assert!(
            set("factor", json!("2"))
                .unwrap_err()
                .contains("must be a number")
        );
        assert_eq!(set("strict", json!(1)).unwrap()[1], ParamValue::Flag(true));
        assert_eq!(
            set("strict", json!(true)).unwrap()[1],
            ParamValue::Flag(true)
        );
        assert!(
            set("mode", json!("wild"))
                .unwrap_err()
                .contains("one of soft, hard")
        );
        assert_eq!(
            set("brands", json!(["acme", "zeta"])).unwrap()[3],
            ParamValue::Strings(vec!["acme".into(), "zeta".into()])
        );
        assert!(set("brands", json!(["acme", 3])).is_err());
        assert!(
            set("nope", json!(1))
                .unwrap_err()
                .contains("has no parameter")
        );
    }
}
