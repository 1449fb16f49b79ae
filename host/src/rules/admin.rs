//! Operators' view of the rules: list, change (priority, enabled, config,
//! failure policy), remove. Every change is validated first, swapped in
//! atomically (the next request sees it; requests in flight keep their
//! snapshot) and persisted so it survives a restart.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    pipeline::RuleKind,
    registry::{ActiveRule, FailurePolicy, RuleRegistry, RuleSource, validate_config},
};
use crate::{
    error::{AppError, AppResult},
    store::{Db, rule_settings},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ParamView {
    pub name: String,
    pub description: String,
    pub default: f64,
    pub min: f64,
    pub max: f64,
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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleView {
    pub name: String,
    pub kind: RuleKind,
    pub priority: i32,
    pub enabled: bool,
    pub description: String,
    /// Current parameter values by name.
    pub config: BTreeMap<String, f64>,
    pub params: Vec<ParamView>,
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
    /// Parameters to change, by name; others keep their values.
    pub config: Option<HashMap<String, f64>>,
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
            .map(|(p, v)| (p.name.clone(), *v))
            .collect(),
        params: m
            .params
            .iter()
            .map(|p| ParamView {
                name: p.name.clone(),
                description: p.description.clone(),
                default: p.default_value,
                min: p.min,
                max: p.max,
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
        config: serde_json::to_string(&rule.config).unwrap_or_else(|_| "[]".into()),
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
            rule.config = validate_config(&rule.compiled.metadata, &rule.config, config)
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
            match serde_json::from_str::<Vec<f64>>(&s.config) {
                Ok(c) if c.len() == rule.compiled.metadata.params.len() => rule.config = c,
                _ => tracing::warn!(rule = %s.name, "stored config does not fit the rule; using its defaults"),
            }
        }
        Ok::<_, anyhow::Error>(())
    })
}
