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
};

use arc_swap::ArcSwap;
use recengine_rules_sdk as sdk;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::engine::{CompiledRule, Limits, RuleEngine};

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
    pub config: Vec<f64>,
    pub policy: FailurePolicy,
    pub source: RuleSource,
    /// What each call may use (the engine's, or tighter from a bundle).
    pub limits: Limits,
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
            config: m.default_config(),
            policy: if m.fail_closed {
                FailurePolicy::FailClosed
            } else {
                FailurePolicy::FailOpen
            },
            source: source.into(),
            limits,
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
}

impl RuleCounters {
    pub fn failure(&self, cause: &'static str) {
        *self
            .failures
            .lock()
            .expect("not poisoned")
            .entry(cause)
            .or_insert(0) += 1;
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
        let mut loaded = Vec::new();
        for path in paths {
            let result = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| self.engine.load(&bytes));
            let compiled = match result {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %format!("{e:#}"), "rule component refused");
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
                    tracing::error!(rule = %name, file = %path.display(), "a rule with this name is already active; file skipped")
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

    fn store(&self, mut rules: Vec<ActiveRule>) {
        // Higher priority first; equal priorities keep their order.
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
        let version = self.current.load().version + 1;
        self.current.store(Arc::new(RuleSet { rules, version }));
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
        self.stats
            .lock()
            .expect("not poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }
}

/// Checks values against the metadata's bounds; returns them in order,
/// defaults filled in. Unknown names are refused.
pub fn validate_config(
    metadata: &sdk::Metadata,
    current: &[f64],
    changes: &HashMap<String, f64>,
) -> Result<Vec<f64>, String> {
    let mut values = current.to_vec();
    values.resize(metadata.params.len(), 0.0);
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
        let p = &metadata.params[i];
        if !value.is_finite() || *value < p.min || *value > p.max {
            return Err(format!(
                "{name} must be between {} and {}, got {value}",
                p.min, p.max
            ));
        }
        values[i] = *value;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::RuleSource;

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
