//! Operators' view of the rules: list, change (priority, enabled, config,
//! failure policy), remove. Every change is validated first, swapped in
//! atomically (the next request sees it; requests in flight keep their
//! snapshot) and persisted so it survives a restart.

use std::collections::{BTreeMap, HashMap};

use recengine_rules_sdk::{Metadata, ParamValue};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    engine::Contract,
    pipeline::RuleKind,
    registry::{
        ActiveRule, FailurePolicy, RuleRegistry, RuleSource, param_from_json, param_to_json,
        validate_config,
    },
};
use crate::{
    error::{AppError, AppResult},
    store::{Db, rule_settings},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ParamView {
    pub name: String,
    pub description: String,
    /// `number`, `flag`, `text` or `strings`.
    #[serde(rename = "type")]
    pub value_type: &'static str,
    /// A number, a boolean, a string or a list of strings, as `type` says.
    pub default: serde_json::Value,
    /// Numbers only.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Text and strings: the values accepted (empty: any).
    pub allowed: Vec<String>,
}

/// One input a rule reads.
#[derive(Debug, Serialize, ToSchema)]
pub struct InputView {
    /// `item`, `item-stat`, `user`, `user-stat`, `user-item` or `context`.
    pub scope: &'static str,
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleStatsView {
    pub calls: u64,
    /// Failures by cause.
    pub failures: BTreeMap<String, u64>,
    pub mean_duration_ms: f64,
    pub dropped: u64,
    pub boosted: u64,
    pub moved: u64,
    /// Promoted items it placed in a response.
    pub promoted: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub name: String,
    pub kind: RuleKind,
    pub priority: i32,
    pub enabled: bool,
    pub description: String,
    /// Current parameter values by name.
    #[schema(value_type = Object)]
    pub config: BTreeMap<String, serde_json::Value>,
    pub params: Vec<ParamView>,
    /// The rule contract the component speaks: `0.1` or `0.2`.
    pub contract: Contract,
    /// What it reads (for a 0.1 rule, its contract's fixed columns).
    pub inputs: Vec<InputView>,
    pub failure_policy: FailurePolicy,
    /// `builtin`, `rules_dir`, or the bundle it came from
    /// (`bundle:<name>@<revision>`).
    #[schema(value_type = String)]
    pub source: RuleSource,
    /// SHA-256 of the component.
    pub digest: String,
    pub sdk_version: String,
    pub stats: RuleStatsView,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleChange {
    /// -10000 to 10000; higher runs first.
    #[schema(minimum = -10_000, maximum = 10_000)]
    pub priority: Option<i32>,
    pub enabled: Option<bool>,
    /// Parameters to change, by name (numbers, booleans, strings or lists
    /// of strings, as each parameter's type says); others keep their
    /// values.
    #[schema(value_type = Option<Object>)]
    pub config: Option<HashMap<String, serde_json::Value>>,
    pub failure_policy: Option<FailurePolicy>,
}

pub fn view(registry: &RuleRegistry, rule: &ActiveRule) -> RuleView {
    let m = &rule.compiled.metadata;
    let counters = registry.counters(&m.name);
    let calls = counters.calls();
    let micros = counters
        .total_micros
        .load(std::sync::atomic::Ordering::Relaxed);
    RuleView {
        name: m.name.clone(),
        kind: m.kind.into(),
        priority: rule.priority,
        enabled: rule.enabled,
        description: m.description.clone(),
        config: m
            .params
            .iter()
            .zip(&rule.config)
            .map(|(p, v)| (p.name.clone(), param_to_json(v)))
            .collect(),
        params: m
            .params
            .iter()
            .map(|p| {
                let number = matches!(p.default_value, ParamValue::Number(_));
                ParamView {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    value_type: p.default_value.type_name(),
                    default: param_to_json(&p.default_value),
                    min: number.then_some(p.min),
                    max: number.then_some(p.max),
                    allowed: p.allowed.clone(),
                }
            })
            .collect(),
        contract: rule.compiled.contract,
        inputs: m
            .inputs
            .iter()
            .map(|i| InputView {
                scope: i.scope.as_str(),
                name: i.name.clone(),
                value_type: i.value_type.as_str(),
            })
            .collect(),
        failure_policy: rule.policy,
        source: rule.source.clone(),
        digest: rule.compiled.digest.clone(),
        sdk_version: m.sdk_version.clone(),
        stats: RuleStatsView {
            calls,
            failures: counters
                .failures()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            mean_duration_ms: if calls == 0 {
                0.0
            } else {
                micros as f64 / calls as f64 / 1000.0
            },
            dropped: counters.dropped.load(std::sync::atomic::Ordering::Relaxed),
            boosted: counters.boosted.load(std::sync::atomic::Ordering::Relaxed),
            moved: counters.moved.load(std::sync::atomic::Ordering::Relaxed),
            promoted: counters.promoted.load(std::sync::atomic::Ordering::Relaxed),
        },
    }
}

pub fn list(registry: &RuleRegistry) -> (u64, Vec<RuleView>) {
    let set = registry.snapshot();
    (
        set.version,
        set.rules.iter().map(|r| view(registry, r)).collect(),
    )
}

pub fn policy_name(p: FailurePolicy) -> &'static str {
    match p {
        FailurePolicy::FailOpen => "fail_open",
        FailurePolicy::FailClosed => "fail_closed",
    }
}

fn setting_of(rule: &ActiveRule, removed: bool) -> rule_settings::RuleSetting {
    rule_settings::RuleSetting {
        name: rule.name().to_string(),
        priority: i64::from(rule.priority),
        enabled: i64::from(rule.enabled),
        config: serde_json::to_string(&rule.config.iter().map(param_to_json).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into()),
        failure_policy: policy_name(rule.policy).into(),
        removed: i64::from(removed),
    }
}

pub async fn change(
    registry: &RuleRegistry,
    db: &Db,
    name: &str,
    change: RuleChange,
) -> AppResult<RuleView> {
    let updated = registry.update(|rules| {
        let rule = rules
            .iter_mut()
            .find(|r| r.name() == name)
            .ok_or_else(|| AppError::NotFound(format!("Rule {name} not found")))?;
        if let Some(config) = &change.config {
            rule.config = validate_config(&rule.compiled.metadata, &rule.config, config.iter())
                .map_err(AppError::Validation)?;
        }
        if let Some(p) = change.priority {
            rule.priority = p;
        }
        if let Some(e) = change.enabled {
            rule.enabled = e;
        }
        if let Some(p) = change.failure_policy {
            rule.policy = p;
        }
        Ok::<_, AppError>(rule.clone())
    })?;
    rule_settings::save(db, &setting_of(&updated, false)).await?;
    tracing::info!(rule = name, "rule changed");
    Ok(view(registry, &updated))
}

pub async fn remove(registry: &RuleRegistry, db: &Db, name: &str) -> AppResult<()> {
    let removed = registry.update(|rules| {
        let pos = rules
            .iter()
            .position(|r| r.name() == name)
            .ok_or_else(|| AppError::NotFound(format!("Rule {name} not found")))?;
        Ok::<_, AppError>(rules.remove(pos))
    })?;
    rule_settings::save(db, &setting_of(&removed, true)).await?;
    tracing::info!(rule = name, "rule removed");
    Ok(())
}

/// How often a replica checks for rule changes made on another one: the
/// bound on how long replicas can disagree about a rule's settings.
pub const SETTINGS_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Follows the rule changes other replicas make: whenever the stored
/// settings change, they are applied here too and `on_change` runs (the
/// lists cached meanwhile, by any replica, may carry the old rules).
pub fn spawn_settings_sync(
    registry: std::sync::Arc<RuleRegistry>,
    db: Db,
    on_change: impl Fn() + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let mut seen = rule_settings::fingerprint(&db).await.ok();
        let mut tick = tokio::time::interval(SETTINGS_SYNC_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(now) = rule_settings::fingerprint(&db).await else {
                continue;
            };
            if seen == Some(now) {
                continue;
            }
            match apply_persisted(&registry, &db).await {
                Ok(()) => {
                    seen = Some(now);
                    on_change();
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "rule settings sync failed"),
            }
        }
    });
}

/// Re-applies stored changes at start, and when another replica changed
/// them. A stored config that no longer fits the rule's parameters (the
/// rule changed) is ignored, with a warning.
pub async fn apply_persisted(registry: &RuleRegistry, db: &Db) -> anyhow::Result<()> {
    let settings = rule_settings::all(db)
        .await
        .map_err(|e| anyhow::anyhow!("reading rule settings: {e}"))?;
    if settings.is_empty() {
        return Ok(());
    }
    registry.update(|rules| {
        for s in &settings {
            if s.removed != 0 {
                rules.retain(|r| r.name() != s.name);
                continue;
            }
            let Some(rule) = rules.iter_mut().find(|r| r.name() == s.name) else {
                continue;
            };
            rule.priority = s.priority as i32;
            rule.enabled = s.enabled != 0;
            rule.policy = if s.failure_policy == "fail_closed" {
                FailurePolicy::FailClosed
            } else {
                FailurePolicy::FailOpen
            };
            match stored_config(&rule.compiled.metadata, &s.config) {
                Some(c) => rule.config = c,
                None => tracing::warn!(rule = %s.name, "stored config does not fit the rule; using its defaults"),
            }
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// Stored parameter values (a JSON list in the metadata's order; numbers
/// only, as 0.1-era settings wrote them, still read), if they all fit.
fn stored_config(metadata: &Metadata, text: &str) -> Option<Vec<ParamValue>> {
    let values: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    if values.len() != metadata.params.len() {
        return None;
    }
    metadata
        .params
        .iter()
        .zip(&values)
        .map(|(p, v)| param_from_json(p, v).ok())
        .collect()
}
