//! Rule bundles (after Open Policy Agent's): a signed archive of rule
//! components and their settings, activated as a whole or not at all.
//!
//! Activation: unpack (size and path checks) → verify the signature →
//! compile each component (cached by digest) → validate (its metadata
//! against the manifest, config against its parameters, limits against the
//! service's, a dry run on sample candidates) → swap the rule set
//! atomically → store. Any failure leaves the active rules as they were and
//! is recorded. Requests in flight finish on the set they started with.
//!
//! Every revision and every activation is stored; `bundle_state` holds the
//! active revision per bundle, with a generation every replica compares to
//! what it runs ([`BundleManager::sync`], at start and every few seconds),
//! so a fleet on one database converges and a restart comes back on the
//! same revision.

pub mod format;
pub mod shadow;
pub mod signing;
pub mod store;
pub mod watch;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use recengine_rules_sdk::{self as sdk, contract, testing::Item};
use serde::Serialize;
use utoipa::ToSchema;

use self::{
    format::{Bundle, Manifest},
    signing::TrustedKeys,
};
use super::{
    engine::Limits,
    input::{RuleContext, RuleUser, build_request, to_wit},
    registry::{ActiveRule, RuleRegistry, validate_config},
};
use crate::store::{Db, millis_to_datetime};

/// The actor of history events a replica records on its own while syncing.
const SYNC_ACTOR: &str = "sync";

/// How often a replica checks the database for activations made elsewhere.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// The source tag of a bundle's rules in the rule set.
fn source_of(name: &str, revision: &str) -> String {
    format!("bundle:{name}@{revision}")
}

fn belongs_to(rule: &ActiveRule, name: &str) -> bool {
    rule.source
        .strip_prefix("bundle:")
        .and_then(|s| s.split_once('@'))
        .is_some_and(|(n, _)| n == name)
}

/// A bundle that passed every check, ready to swap in.
pub struct Prepared {
    pub bundle: Bundle,
    pub rules: Vec<ActiveRule>,
    pub signed_by: Option<String>,
}

/// What this replica runs for one bundle, and how its last attempt went.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LocalState {
    pub revision: Option<String>,
    /// The fleet's active revision when this replica refused to load it
    /// (see `last_error`); `null` once it runs the active revision.
    pub refused_revision: Option<String>,
    pub generation: i64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivationReport {
    pub name: String,
    pub revision: String,
    pub digest: String,
    pub signed_by: Option<String>,
    /// The rules now active from this bundle.
    pub rules: Vec<String>,
    pub activated_at: DateTime<Utc>,
}

pub struct BundleManager {
    registry: Arc<RuleRegistry>,
    db: Db,
    pub keys: TrustedKeys,
    pub max_bytes: usize,
    local: Mutex<HashMap<String, LocalState>>,
    /// One activation at a time per process; the database orders replicas.
    activating: tokio::sync::Mutex<()>,
    /// The bundle under shadow evaluation on this replica, if any.
    shadow: arc_swap::ArcSwapOption<shadow::Shadow>,
}

impl BundleManager {
    pub fn new(registry: Arc<RuleRegistry>, db: Db, keys: TrustedKeys, max_bytes: usize) -> Self {
        Self {
            registry,
            db,
            keys,
            max_bytes,
            local: Mutex::new(HashMap::new()),
            activating: tokio::sync::Mutex::new(()),
            shadow: arc_swap::ArcSwapOption::empty(),
        }
    }

    pub fn local_state(&self) -> HashMap<String, LocalState> {
        self.local.lock().expect("not poisoned").clone()
    }

    fn note_error(&self, name: &str, error: &str) {
        crate::telemetry::metrics::METRICS
            .bundle_failures
            .with_label_values(&[name, refusal_cause(error)])
            .inc();
        let mut local = self.local.lock().expect("not poisoned");
        let state = local.entry(name.to_string()).or_default();
        state.last_error = Some(error.to_string());
        state.last_error_at = Some(Utc::now());
    }

    /// Everything but the swap: CPU-bound (compilation), so callers run it
    /// on the blocking pool.
    pub fn prepare(&self, archive: &[u8]) -> Result<Prepared, String> {
        let bundle = format::unpack(archive, self.max_bytes)?;
        let signed_by = self.keys.verify(&bundle)?;
        let engine = &self.registry.engine;
        let ceiling = engine.limits();
        let mut rules = Vec::new();
        for entry in &bundle.manifest.rules {
            let bytes = &bundle.files[&entry.component];
            let compiled = engine
                .load(bytes)
                .map_err(|e| format!("{}: {e:#}", entry.component))?;
            let m = &compiled.metadata;
            if let Some(expected) = &entry.name
                && expected != &m.name
            {
                return Err(format!(
                    "{}: the manifest says {expected:?} but the component is {:?}",
                    entry.component, m.name
                ));
            }
            let changes: HashMap<String, f64> = entry.config.clone().into_iter().collect();
            let config = validate_config(m, &m.default_config(), &changes)
                .map_err(|e| format!("{}: {e}", m.name))?;
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
                return Err(format!(
                    "{}: limits may only be tighter than the service's ({} ms, {} MiB)",
                    m.name,
                    ceiling.deadline.as_millis(),
                    ceiling.memory_bytes >> 20
                ));
            }
            let mut rule = ActiveRule::from_compiled(
                compiled.clone(),
                &source_of(&bundle.manifest.name, &bundle.manifest.revision),
                limits,
            );
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
                return Err(format!("{} appears twice in the bundle", rule.name()));
            }
            rules.push(rule);
        }
        Ok(Prepared {
            bundle,
            rules,
            signed_by,
        })
    }

    /// Swaps the bundle's rules in place of its previous revision's; a name
    /// clash with a rule from elsewhere refuses the swap.
    fn swap(&self, name: &str, rules: Vec<ActiveRule>) -> Result<(), String> {
        self.registry.update(|current| {
            if let Some(clash) = current
                .iter()
                .filter(|r| !belongs_to(r, name))
                .find(|r| rules.iter().any(|n| n.name() == r.name()))
            {
                return Err(format!(
                    "a rule named {:?} is already active from {}",
                    clash.name(),
                    clash.source
                ));
            }
            current.retain(|r| !belongs_to(r, name));
            current.extend(rules);
            Ok(())
        })
    }

    fn remove_rules(&self, name: &str) {
        let _ = self.registry.update(|current| {
            current.retain(|r| !belongs_to(r, name));
            Ok::<_, ()>(())
        });
    }

    async fn prepare_off_thread(self: &Arc<Self>, archive: Vec<u8>) -> Result<Prepared, String> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.prepare(&archive))
            .await
            .map_err(|e| format!("activation aborted: {e}"))?
    }

    /// Uploads and activates. `Err` carries the reason; the active rules
    /// are then untouched.
    pub async fn activate(
        self: &Arc<Self>,
        archive: Vec<u8>,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let _one = self.activating.lock().await;
        let prepared = match self.prepare_off_thread(archive.clone()).await {
            Ok(p) => p,
            Err(reason) => {
                let name = format::unpack(&archive, self.max_bytes)
                    .map(|b| (b.manifest.name, b.manifest.revision))
                    .unwrap_or_else(|_| ("?".into(), "?".into()));
                self.note_error(&name.0, &reason);
                store::event(&self.db, &name.0, &name.1, "refused", Some(&reason), actor).await?;
                return Err(BundleError::Refused(reason));
            }
        };
        let id = match store::save_revision(&self.db, &prepared, &archive, actor).await? {
            Ok(id) => id,
            Err(reason) => {
                let m = &prepared.bundle.manifest;
                self.note_error(&m.name, &reason);
                store::event(
                    &self.db,
                    &m.name,
                    &m.revision,
                    "refused",
                    Some(&reason),
                    actor,
                )
                .await?;
                return Err(BundleError::Refused(reason));
            }
        };
        self.finish(prepared, id, "activate", actor).await
    }

    async fn finish(
        &self,
        prepared: Prepared,
        bundle_id: i64,
        action: &str,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let Manifest { name, revision, .. } = prepared.bundle.manifest.clone();
        let rule_names: Vec<String> = prepared
            .rules
            .iter()
            .map(|r| r.name().to_string())
            .collect();
        if let Err(reason) = self.swap(&name, prepared.rules) {
            self.note_error(&name, &reason);
            store::event(&self.db, &name, &revision, "refused", Some(&reason), actor).await?;
            return Err(BundleError::Refused(reason));
        }
        let generation = store::set_active(&self.db, &name, Some((bundle_id, &revision))).await?;
        store::event(&self.db, &name, &revision, action, None, actor).await?;
        let now = Utc::now();
        {
            let mut local = self.local.lock().expect("not poisoned");
            let state = local.entry(name.clone()).or_default();
            state.revision = Some(revision.clone());
            state.refused_revision = None;
            state.generation = generation;
            state.last_success = Some(now);
        }
        crate::telemetry::metrics::METRICS
            .bundle_activations
            .with_label_values(&[&name, action])
            .inc();
        tracing::info!(bundle = %name, %revision, action, rules = ?rule_names, "rule bundle activated");
        Ok(ActivationReport {
            name,
            revision,
            digest: prepared.bundle.digest,
            signed_by: prepared.signed_by,
            rules: rule_names,
            activated_at: now,
        })
    }

    /// Re-activates a stored revision (verified again: keys may have
    /// changed since).
    pub async fn rollback(
        self: &Arc<Self>,
        name: &str,
        revision: &str,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let _one = self.activating.lock().await;
        let (id, archive) = store::load_revision(&self.db, name, revision)
            .await?
            .ok_or(BundleError::NotFound)?;
        let prepared = match self.prepare_off_thread(archive).await {
            Ok(p) => p,
            Err(reason) => {
                self.note_error(name, &reason);
                store::event(&self.db, name, revision, "refused", Some(&reason), actor).await?;
                return Err(BundleError::Refused(reason));
            }
        };
        self.finish(prepared, id, "rollback", actor).await
    }

    /// Whether these exact bytes were uploaded before (by any replica).
    pub async fn known(&self, digest: &str) -> bool {
        store::digest_known(&self.db, digest).await.unwrap_or(false)
    }

    pub fn shadow(&self) -> Option<Arc<shadow::Shadow>> {
        self.shadow.load_full()
    }

    /// Puts a bundle in shadow: verified, compiled and validated like an
    /// activation and stored as a revision (so promoting it is a rollback
    /// to it), but only compared, never served.
    pub async fn start_shadow(
        self: &Arc<Self>,
        archive: Vec<u8>,
        actor: &str,
    ) -> Result<shadow::ShadowReport, BundleError> {
        let prepared = self
            .prepare_off_thread(archive.clone())
            .await
            .map_err(BundleError::Refused)?;
        store::save_revision(&self.db, &prepared, &archive, actor)
            .await?
            .map_err(BundleError::Refused)?;
        let m = &prepared.bundle.manifest;
        store::event(&self.db, &m.name, &m.revision, "shadow", None, actor).await?;
        let shadow = Arc::new(shadow::Shadow::new(
            m.name.clone(),
            m.revision.clone(),
            prepared.rules,
        ));
        self.shadow.store(Some(shadow.clone()));
        tracing::info!(bundle = %m.name, revision = %m.revision, "rule bundle in shadow");
        Ok(shadow.report())
    }

    pub fn stop_shadow(&self) -> Option<shadow::ShadowReport> {
        self.shadow.swap(None).map(|s| s.report())
    }

    /// Activates the shadowed revision and ends the shadow.
    pub async fn promote_shadow(
        self: &Arc<Self>,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let shadow = self.shadow().ok_or(BundleError::NotFound)?;
        let report = self.rollback(&shadow.name, &shadow.revision, actor).await?;
        self.shadow.store(None);
        Ok(report)
    }

    /// Deactivates a bundle: its rules leave the set; its revisions stay
    /// for the history and a later rollback.
    pub async fn delete(&self, name: &str, actor: &str) -> Result<(), BundleError> {
        let _one = self.activating.lock().await;
        let active = store::active(&self.db).await?;
        let Some(current) = active
            .iter()
            .find(|a| a.name == name && a.revision.is_some())
        else {
            return Err(BundleError::NotFound);
        };
        self.remove_rules(name);
        let generation = store::set_active(&self.db, name, None).await?;
        let revision = current.revision.clone().unwrap_or_default();
        store::event(&self.db, name, &revision, "delete", None, actor).await?;
        crate::telemetry::metrics::METRICS
            .bundle_activations
            .with_label_values(&[name, "delete"])
            .inc();
        let mut local = self.local.lock().expect("not poisoned");
        let state = local.entry(name.to_string()).or_default();
        state.revision = None;
        state.refused_revision = None;
        state.generation = generation;
        Ok(())
    }

    /// The generation this replica runs for a bundle; -1 if none yet.
    fn running_generation(&self, name: &str) -> i64 {
        self.local
            .lock()
            .expect("not poisoned")
            .get(name)
            .map_or(-1, |s| s.generation)
    }

    /// Converges on the database: every bundle whose stored generation
    /// differs from what this replica runs is activated (or removed).
    /// Returns how many changed.
    pub async fn sync(self: &Arc<Self>) -> anyhow::Result<usize> {
        let active = store::active(&self.db).await?;
        let mut changed = 0;
        for row in active {
            if self.running_generation(&row.name) == row.generation {
                continue;
            }
            let _one = self.activating.lock().await;
            // An activation on this replica may have finished while we
            // waited (its NOTIFY arrives before it records the generation
            // locally): then there is nothing to load again.
            if self.running_generation(&row.name) >= row.generation {
                continue;
            }
            match (&row.revision, row.bundle_id) {
                (Some(revision), Some(_)) => {
                    let Some((_, archive)) =
                        store::load_revision(&self.db, &row.name, revision).await?
                    else {
                        continue;
                    };
                    match self.prepare_off_thread(archive).await {
                        Ok(prepared) => {
                            if let Err(reason) = self.swap(&row.name, prepared.rules) {
                                self.note_error(&row.name, &reason);
                                continue;
                            }
                            let mut local = self.local.lock().expect("not poisoned");
                            let state = local.entry(row.name.clone()).or_default();
                            state.revision = Some(revision.clone());
                            state.refused_revision = None;
                            state.generation = row.generation;
                            state.last_success = Some(millis_to_datetime(row.activated_at));
                            tracing::info!(bundle = %row.name, %revision, "rule bundle synced");
                        }
                        Err(reason) => {
                            // The fleet's active revision does not pass this
                            // replica's checks (typically: it is unsigned and
                            // BUNDLE_PUBLIC_KEYS is now set). Its rules are not
                            // run here; say so everywhere an operator looks:
                            // the log, the failure counter, the bundle's
                            // history, and `last_error` in the bundle listing.
                            let reason =
                                format!("the stored active revision was not loaded: {reason}");
                            tracing::error!(bundle = %row.name, %revision, %reason, "stored rule bundle refused");
                            self.note_error(&row.name, &reason);
                            store::event(
                                &self.db,
                                &row.name,
                                revision,
                                "refused",
                                Some(&reason),
                                SYNC_ACTOR,
                            )
                            .await?;
                            // Do not retry a refused revision every tick.
                            let mut local = self.local.lock().expect("not poisoned");
                            let state = local.entry(row.name.clone()).or_default();
                            state.generation = row.generation;
                            // What ran before is gone with the restart or
                            // stays on the previous revision; either way it
                            // is not the active revision.
                            state.refused_revision = Some(revision.clone());
                            continue;
                        }
                    }
                }
                _ => {
                    self.remove_rules(&row.name);
                    let mut local = self.local.lock().expect("not poisoned");
                    let state = local.entry(row.name.clone()).or_default();
                    state.revision = None;
                    state.generation = row.generation;
                }
            }
            changed += 1;
        }
        Ok(changed)
    }

    /// On PostgreSQL: listens for activations announced by other replicas
    /// and syncs at once (reconnecting after a lost connection).
    pub fn spawn_listener(
        self: &Arc<Self>,
        database_url: String,
        on_change: impl Fn() + Send + Sync + 'static,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = sqlx::postgres::PgListener::connect(&database_url).await?;
                    listener.listen(store::NOTIFY_CHANNEL).await?;
                    loop {
                        let note = listener.recv().await?;
                        tracing::debug!(bundle = note.payload(), "bundle activation announced");
                        match this.sync().await {
                            Ok(0) => {}
                            Ok(_) => on_change(),
                            Err(e) => {
                                tracing::warn!(error = %format!("{e:#}"), "rule bundle sync failed")
                            }
                        }
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                if let Err(e) = listener.await {
                    tracing::warn!(error = %e, "bundle announcements lost; reconnecting");
                }
                tokio::time::sleep(SYNC_INTERVAL).await;
            }
        });
    }

    /// Checks the database every [`SYNC_INTERVAL`] for activations made by
    /// other replicas.
    pub fn spawn_sync(self: &Arc<Self>, on_change: impl Fn() + Send + Sync + 'static) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SYNC_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match this.sync().await {
                    Ok(0) => {}
                    Ok(_) => on_change(),
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "rule bundle sync failed"),
                }
            }
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Refused(String),
    #[error("no such bundle or revision")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Runs the rule on a sample request and checks its answer against its
/// kind's contract: a component that traps, overruns or breaks the
/// contract never reaches live traffic.
fn dry_run(registry: &RuleRegistry, rule: &ActiveRule) -> Result<(), String> {
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
        .map_err(|f| format!("{}: the dry run failed: {f}", rule.name()))?;
    let mut candidates: sdk::Candidates = request.candidates.clone();
    contract::apply(rule.compiled.metadata.kind, &mut candidates, outcome).map_err(|v| {
        format!(
            "{}: the dry run broke the {:?} contract: {v}",
            rule.name(),
            rule.compiled.metadata.kind
        )
    })?;
    Ok(())
}

/// A refusal's cause, for the failure counter (its label must stay
/// low-cardinality; the full reason is in the history and the logs).
pub fn refusal_cause(reason: &str) -> &'static str {
    let has = |s: &str| reason.contains(s);
    if has("signature") || has("signed") || has("unknown key") {
        "signature"
    } else if has("SHA-256") {
        "digest"
    } else if has("bytes") && has("at most") || has("unpacks to") {
        "size"
    } else if has("dry run") {
        "dry_run"
    } else if has("limits") {
        "limits"
    } else if has("already") {
        "conflict"
    } else if has("manifest") || has("unknown field") || has("gzip") || has("path") {
        "malformed"
    } else {
        "invalid"
    }
}
