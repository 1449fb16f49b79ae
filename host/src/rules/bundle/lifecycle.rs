//! What operators do with bundles: activate, roll back, delete, and shadow.
//! Each change swaps the rule set and is stored (the revision, the active
//! state, an event in the history); a refusal leaves the active rules as
//! they were and is recorded the same way wherever it happens.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{BundleError, BundleManager, Prepared, Refusal, format, shadow, uploads};
use crate::{
    rules::registry::ActiveRule,
    store::bundles::{self, NewRevision, Saved},
};

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

impl BundleManager {
    /// Counts a refusal, keeps it as the bundle's last error and stores it
    /// in the bundle's history.
    pub(super) async fn record_refusal(
        &self,
        name: &str,
        revision: &str,
        refusal: &Refusal,
        actor: &str,
    ) -> sqlx::Result<()> {
        self.note_error(name, refusal);
        let reason = refusal.to_string();
        bundles::event(&self.db, name, revision, "refused", Some(&reason), actor).await
    }

    /// [`record_refusal`](Self::record_refusal), then the error to return.
    async fn refuse(
        &self,
        name: &str,
        revision: &str,
        refusal: Refusal,
        actor: &str,
    ) -> BundleError {
        match self.record_refusal(name, revision, &refusal, actor).await {
            Ok(()) => BundleError::Refused(refusal),
            Err(e) => BundleError::Database(e),
        }
    }

    /// Swaps the bundle's rules in place of its previous revision's; a name
    /// clash with a rule from elsewhere refuses the swap.
    pub(super) fn swap(&self, name: &str, rules: Vec<ActiveRule>) -> Result<(), Refusal> {
        self.registry.update(|current| {
            if let Some(clash) = current
                .iter()
                .filter(|r| !r.source.is_bundle(name))
                .find(|r| rules.iter().any(|n| n.name() == r.name()))
            {
                return Err(Refusal::Conflict(format!(
                    "a rule named {:?} is already active from {}",
                    clash.name(),
                    clash.source
                )));
            }
            current.retain(|r| !r.source.is_bundle(name));
            current.extend(rules);
            Ok(())
        })
    }

    pub(super) fn remove_rules(&self, name: &str) {
        let _ = self.registry.update(|current| {
            current.retain(|r| !r.source.is_bundle(name));
            Ok::<_, ()>(())
        });
    }

    /// Stores the revision; refused when its name and revision were
    /// uploaded before with other content.
    async fn save(
        &self,
        prepared: &Prepared,
        archive: &[u8],
        actor: &str,
    ) -> Result<i64, BundleError> {
        let m = &prepared.bundle.manifest;
        let saved = bundles::save_revision(
            &self.db,
            NewRevision {
                name: &m.name,
                revision: &m.revision,
                digest: &prepared.bundle.digest,
                archive,
                manifest: &prepared.bundle.manifest_bytes,
                signed_by: prepared.signed_by.as_deref(),
                actor,
            },
        )
        .await?;
        match saved {
            Saved::Id(id) => Ok(id),
            Saved::DifferentContent => Err(BundleError::Refused(Refusal::Conflict(format!(
                "revision {:?} of {:?} already exists with different content; give the new one a new revision",
                m.revision, m.name
            )))),
        }
    }

    /// Takes an upload: its digest (the upload's id), queued in
    /// [`uploads`](Self::uploads) until [`activate_received`]
    /// (Self::activate_received) finishes it. Refused when the same archive
    /// or too many others are already on their way.
    pub async fn receive(&self, archive: &[u8]) -> Result<uploads::UploadProgress, BundleError> {
        // Hashing tens of MB takes tens of ms: not on an async worker.
        let bytes = archive.to_vec();
        let digest = tokio::task::spawn_blocking(move || format::sha256_hex(&bytes))
            .await
            .map_err(|e| Refusal::Invalid(format!("upload aborted: {e}")))?;
        self.uploads.receive(&digest).map_err(|e| match e {
            uploads::NotTaken::Busy => BundleError::Busy,
            uploads::NotTaken::AlreadyInFlight(u) => BundleError::InFlight(u),
        })
    }

    /// Receives and activates. `Err` carries the reason; the active rules
    /// are then untouched.
    pub async fn activate(
        self: &Arc<Self>,
        archive: Vec<u8>,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let upload = self.receive(&archive).await?;
        self.activate_received(archive, &upload.digest, actor).await
    }

    /// Activates an upload [`receive`](Self::receive) took, recording its
    /// progress and outcome under `digest`.
    pub async fn activate_received(
        self: &Arc<Self>,
        archive: Vec<u8>,
        digest: &str,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let outcome = self.activate_in_turn(archive, digest, actor).await;
        self.uploads
            .finish(digest, outcome.as_ref().map_err(|e| e.to_string()));
        outcome
    }

    async fn activate_in_turn(
        self: &Arc<Self>,
        archive: Vec<u8>,
        digest: &str,
        actor: &str,
    ) -> Result<ActivationReport, BundleError> {
        let _one = self.activating.lock().await;
        self.uploads
            .update(digest, |u| u.state = uploads::UploadState::Preparing);
        let prepared = match self
            .prepare_off_thread(archive.clone(), Some(digest.to_string()))
            .await
        {
            Ok(p) => p,
            Err(refusal) => {
                let (name, revision) = format::unpack(&archive, self.caps)
                    .map(|b| (b.manifest.name, b.manifest.revision))
                    .unwrap_or_else(|_| ("?".into(), "?".into()));
                return Err(self.refuse(&name, &revision, refusal, actor).await);
            }
        };
        let id = match self.save(&prepared, &archive, actor).await {
            Ok(id) => id,
            Err(BundleError::Refused(refusal)) => {
                let m = &prepared.bundle.manifest;
                return Err(self.refuse(&m.name, &m.revision, refusal, actor).await);
            }
            Err(e) => return Err(e),
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
        let format::Manifest { name, revision, .. } = prepared.bundle.manifest.clone();
        let rule_names: Vec<String> = prepared
            .rules
            .iter()
            .map(|r| r.name().to_string())
            .collect();
        if let Err(refusal) = self.swap(&name, prepared.rules) {
            return Err(self.refuse(&name, &revision, refusal, actor).await);
        }
        let generation = bundles::set_active(&self.db, &name, Some((bundle_id, &revision))).await?;
        bundles::event(&self.db, &name, &revision, action, None, actor).await?;
        let now = Utc::now();
        self.update_local(&name, |state| {
            state.revision = Some(revision.clone());
            state.refused_revision = None;
            state.generation = generation;
            state.last_success = Some(now);
        });
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
        let (id, archive) = bundles::load_revision(&self.db, name, revision)
            .await?
            .ok_or(BundleError::NotFound)?;
        let prepared = match self.prepare_off_thread(archive, None).await {
            Ok(p) => p,
            Err(refusal) => return Err(self.refuse(name, revision, refusal, actor).await),
        };
        self.finish(prepared, id, "rollback", actor).await
    }

    /// Whether these exact bytes were uploaded before (by any replica).
    pub async fn known(&self, digest: &str) -> bool {
        bundles::digest_known(&self.db, digest)
            .await
            .unwrap_or(false)
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
        // In turn with activations: one unpacked bundle in memory at a time.
        let _one = self.activating.lock().await;
        let prepared = self.prepare_off_thread(archive.clone(), None).await?;
        self.save(&prepared, &archive, actor).await?;
        let m = &prepared.bundle.manifest;
        bundles::event(&self.db, &m.name, &m.revision, "shadow", None, actor).await?;
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
        let active = bundles::active(&self.db).await?;
        let Some(current) = active
            .iter()
            .find(|a| a.name == name && a.revision.is_some())
        else {
            return Err(BundleError::NotFound);
        };
        self.remove_rules(name);
        let generation = bundles::set_active(&self.db, name, None).await?;
        let revision = current.revision.clone().unwrap_or_default();
        bundles::event(&self.db, name, &revision, "delete", None, actor).await?;
        crate::telemetry::metrics::METRICS
            .bundle_activations
            .with_label_values(&[name, "delete"])
            .inc();
        self.update_local(name, |state| {
            state.revision = None;
            state.refused_revision = None;
            state.generation = generation;
        });
        Ok(())
    }
}
