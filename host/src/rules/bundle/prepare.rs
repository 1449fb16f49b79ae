//! Everything an activation does before the swap: unpack, verify the
//! signature, compile each component, check it against its manifest entry
//! and the service's limits, and try it on a sample request. CPU-bound
//! (compilation), so it runs on the blocking pool; nothing here changes
//! the active rules or the database.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use recengine_rules_sdk::{self as sdk, builder::Item, contract};

use super::{BundleManager, Refusal, format, format::Bundle};
use crate::rules::{
    engine::Limits,
    input::{RuleContext, RuleUser, build_request, to_wit},
    registry::{ActiveRule, RuleRegistry, RuleSource, validate_config},
};

/// A bundle that passed every check, ready to swap in.
pub struct Prepared {
    pub bundle: Bundle,
    pub rules: Vec<ActiveRule>,
    pub signed_by: Option<String>,
}

impl BundleManager {
    /// Every check of an archive, on the calling thread.
    pub fn prepare(&self, archive: &[u8]) -> Result<Prepared, Refusal> {
        let bundle = format::unpack(archive, self.max_bytes)?;
        let signed_by = self.keys.verify(&bundle)?;
        let engine = &self.registry.engine;
        let ceiling = engine.limits();
        let source = RuleSource::Bundle {
            name: bundle.manifest.name.clone(),
            revision: bundle.manifest.revision.clone(),
        };
        let mut rules = Vec::new();
        for entry in &bundle.manifest.rules {
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
            let changes: HashMap<String, f64> = entry.config.clone().into_iter().collect();
            let config = validate_config(m, &m.default_config(), &changes)
                .map_err(|e| Refusal::Invalid(format!("{}: {e}", m.name)))?;
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
            rule.enabled = entry.enabled;
            if let Some(p) = entry.priority {
                // Within PRIORITY_RANGE (checked on unpacking), so it fits.
                rule.priority = p as i32;
            }
            if let Some(p) = entry.failure_policy {
                rule.policy = p;
            }
            dry_run(&self.registry, &rule)?;
            if rules.iter().any(|r: &ActiveRule| r.name() == rule.name()) {
                return Err(Refusal::Invalid(format!(
                    "{} appears twice in the bundle",
                    rule.name()
                )));
            }
            rules.push(rule);
        }
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
    ) -> Result<Prepared, Refusal> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.prepare(&archive))
            .await
            .map_err(|e| Refusal::Invalid(format!("activation aborted: {e}")))?
    }
}

/// Runs the rule on a sample request and checks its answer against its
/// kind's contract: a component that traps, overruns or breaks the
/// contract never reaches live traffic.
fn dry_run(registry: &RuleRegistry, rule: &ActiveRule) -> Result<(), Refusal> {
    let user = RuleUser {
        id: 1,
        age: Some(30),
        country: Some("US".into()),
        favorite_categories: vec!["books".into()],
        favorite_tags: vec!["new".into()],
        purchased: vec![3],
    };
    let now = Utc::now();
    let items = (1..=20).map(|i| {
        let mut item = Item::new(i, 1.0 - i as f64 * 0.04);
        item.category = Some(["books", "toys", "garden"][i as usize % 3].to_string());
        item.tags = vec!["new".into()];
        item.in_stock = Some(i % 7 != 0);
        item.created_at_ms = now.timestamp_millis() - i * 86_400_000;
        item
    });
    let request = build_request(&user, &RuleContext::default(), now, items);
    let outcome = registry
        .engine
        .apply_within(
            &rule.compiled,
            &to_wit(&request, &rule.config),
            &rule.limits,
        )
        .map_err(|f| Refusal::DryRun(format!("{}: the dry run failed: {f}", rule.name())))?;
    let mut candidates: sdk::Candidates = request.candidates.clone();
    contract::apply(rule.compiled.metadata.kind, &mut candidates, outcome).map_err(|v| {
        Refusal::DryRun(format!(
            "{}: the dry run broke the {:?} contract: {v}",
            rule.name(),
            rule.compiled.metadata.kind
        ))
    })?;
    Ok(())
}
