//! Everything an activation does before the swap: unpack, verify the
//! signature, compile each component, check it against its manifest entry
//! and the service's limits, and try it on a sample request. CPU-bound
//! (compilation), so it runs on the blocking pool; nothing here changes
//! the active rules or the database.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use recengine_rules_sdk as sdk;

use super::{BundleManager, Refusal, format, format::Bundle, uploads::UploadProgress};
use crate::rules::{
    engine::Limits,
    input::sample::sample_subject,
    pipeline::{self, PROMOTION_FILTERS},
    registry::{ActiveRule, RuleRegistry, RuleSource, validate_config},
};

/// A bundle that passed every check, ready to swap in.
pub struct Prepared {
    pub bundle: Bundle,
    pub rules: Vec<ActiveRule>,
    pub signed_by: Option<String>,
}

impl BundleManager {
    /// Every check of an archive, on the calling thread; `upload` (a
    /// digest) names the upload whose progress to record, if any.
    pub fn prepare(&self, archive: &[u8], upload: Option<&str>) -> Result<Prepared, Refusal> {
        let note = |change: &dyn Fn(&mut UploadProgress)| {
            if let Some(digest) = upload {
                self.uploads.update(digest, change);
            }
        };
        let bundle = format::unpack(archive, self.caps)?;
        note(&|u| {
            u.name = Some(bundle.manifest.name.clone());
            u.revision = Some(bundle.manifest.revision.clone());
            u.components = bundle.manifest.rules.len();
        });
        let signed_by = self.keys.verify(&bundle)?;
        let rules = prepare_rules(&self.registry, &bundle, &|ready, component| {
            note(&|u| {
                u.components_ready = ready;
                u.current = Some(component.to_string());
            });
        })?;
        Ok(Prepared {
            bundle,
            rules,
            signed_by,
        })
    }

    /// [`prepare`](Self::prepare) on the blocking pool.
    pub(super) async fn prepare_off_thread(
        self: &Arc<Self>,
        archive: Vec<u8>,
        upload: Option<String>,
    ) -> Result<Prepared, Refusal> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.prepare(&archive, upload.as_deref()))
            .await
            .map_err(|e| Refusal::Invalid(format!("activation aborted: {e}")))?
    }
}

/// Compiles each of `bundle`'s components in `registry`'s engine, checks it
/// against its manifest entry (name, typed config, promote skips) and the
/// engine's limits, and tries it on a sample request: the rules the bundle
/// would activate, or why it is refused. No service needed (`rules test`
/// runs it in a throwaway engine). `on_component(ready, path)` is told
/// before each component is compiled, with how many are ready.
pub fn prepare_rules(
    registry: &RuleRegistry,
    bundle: &Bundle,
    on_component: &dyn Fn(usize, &str),
) -> Result<Vec<ActiveRule>, Refusal> {
    let engine = &registry.engine;
    let ceiling = engine.limits();
    let source = RuleSource::Bundle {
        name: bundle.manifest.name.clone(),
        revision: bundle.manifest.revision.clone(),
    };
    let mut rules = Vec::new();
    for (ready, entry) in bundle.manifest.rules.iter().enumerate() {
        on_component(ready, &entry.component);
        let bytes = &bundle.files[&entry.component];
        let compiled = engine
            .load(bytes)
            .map_err(|e| Refusal::Invalid(format!("{}: {e:#}", entry.component)))?;
        let m = &compiled.metadata;
        if let Some(expected) = &entry.name
            && expected != &m.name
        {
            return Err(Refusal::Malformed(format!(
                "{}: the manifest says {expected:?} but the component is {:?}",
                entry.component, m.name
            )));
        }
        let config = validate_config(m, &m.default_params(), entry.config.iter())
            .map_err(|e| Refusal::Invalid(format!("{}: {e}", m.name)))?;
        check_promote_skips(m, &entry.promote_skip_filters)?;
        let limits = Limits {
            deadline: entry
                .limits
                .deadline_ms
                .map_or(ceiling.deadline, Duration::from_millis),
            // `check_manifest` bounded it to 256 MiB: no overflow.
            memory_bytes: entry
                .limits
                .memory_mb
                .map_or(ceiling.memory_bytes, |mb| (mb as usize) << 20),
            max_candidates: ceiling.max_candidates,
            reuse_instances: entry.reuse_instances,
        };
        if limits.deadline > ceiling.deadline
            || limits.memory_bytes > ceiling.memory_bytes
            || limits.deadline.is_zero()
        {
            return Err(Refusal::Limits(format!(
                "{}: limits may only be tighter than the service's ({} ms, {} MiB)",
                m.name,
                ceiling.deadline.as_millis(),
                ceiling.memory_bytes >> 20
            )));
        }
        let mut rule = ActiveRule::from_compiled(compiled.clone(), source.clone(), limits);
        rule.config = config;
        rule.promote_skips = entry.promote_skip_filters.clone();
        rule.enabled = entry.enabled;
        if let Some(p) = entry.priority {
            // Within PRIORITY_RANGE (checked on unpacking), so it fits.
            rule.priority = p as i32;
        }
        if let Some(p) = entry.failure_policy {
            rule.policy = p;
        }
        dry_run(registry, &rule)?;
        if rules.iter().any(|r: &ActiveRule| r.name() == rule.name()) {
            return Err(Refusal::Invalid(format!(
                "{} appears twice in the bundle",
                rule.name()
            )));
        }
        rules.push(rule);
    }
    Ok(rules)
}

/// Only a promote rule may skip filters, and only the non-safety ones the
/// host names ([`PROMOTION_FILTERS`]).
fn check_promote_skips(m: &sdk::Metadata, skips: &[String]) -> Result<(), Refusal> {
    if skips.is_empty() {
        return Ok(());
    }
    if m.kind != sdk::Kind::Promote {
        return Err(Refusal::Invalid(format!(
            "{}: promote_skip_filters is for promote rules only",
            m.name
        )));
    }
    if let Some(name) = skips
        .iter()
        .find(|s| !PROMOTION_FILTERS.contains(&s.as_str()))
    {
        return Err(Refusal::Invalid(format!(
            "{}: promote_skip_filters may name only {} (safety filters always apply), not {name:?}",
            m.name,
            PROMOTION_FILTERS.join(", ")
        )));
    }
    Ok(())
}

/// Runs the rule on a sample request and checks its answer against its
/// kind's contract: a component that traps, overruns or breaks the
/// contract never reaches live traffic.
fn dry_run(registry: &RuleRegistry, rule: &ActiveRule) -> Result<(), Refusal> {
    let sample = sample_subject(Utc::now().timestamp_millis());
    pipeline::try_rule(registry, rule, &sample)
        .map(|_| ())
        .map_err(|e| Refusal::DryRun(format!("{}: {e}", rule.name())))
}
