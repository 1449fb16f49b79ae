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
//! Every revision and every activation is stored (`store::bundles`);
//! `bundle_state` holds the active revision per bundle, with a generation
//! every replica compares to what it runs ([`BundleManager::sync`], at
//! start and every few seconds), so a fleet on one database converges and
//! a restart comes back on the same revision.
//!
//! # Layout
//! - [`format`]: the archive and its manifest; unpacking and its checks.
//! - [`signing`]: ed25519 signatures over the manifest, the trusted keys.
//! - [`prepare`]: everything before the swap: unpack, verify, compile,
//!   validate, dry run.
//! - [`lifecycle`]: activation, rollback, deletion and shadow, each a swap
//!   recorded in the database; refusals recorded the same way everywhere.
//! - [`sync`]: following the database (a periodic check, and PostgreSQL
//!   notifications) so every replica runs the fleet's revisions.
//! - [`refusal`]: why a bundle was refused, and the cause that labels the
//!   failure counter.
//! - [`shadow`]: a bundle run beside the active rules, compared, not served.
//! - [`uploads`]: uploads on their way to activation and their progress.
//! - [`watch`]: the rules directory, polled for bundles.

pub mod format;
pub mod lifecycle;
pub mod prepare;
pub mod refusal;
pub mod shadow;
pub mod signing;
pub mod sync;
pub mod uploads;
pub mod watch;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use self::signing::TrustedKeys;
pub use self::{lifecycle::ActivationReport, prepare::Prepared, refusal::Refusal};
use super::registry::RuleRegistry;
use crate::store::Db;

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

/// The bundles of this process: what it runs of each, the shadow, and the
/// one lock that orders its activations.
pub struct BundleManager {
    registry: Arc<RuleRegistry>,
    db: Db,
    pub keys: TrustedKeys,
    pub caps: format::BundleCaps,
    local: Mutex<HashMap<String, LocalState>>,
    /// One activation at a time per process; the database orders replicas.
    activating: tokio::sync::Mutex<()>,
    /// The bundle under shadow evaluation on this replica, if any.
    shadow: arc_swap::ArcSwapOption<shadow::Shadow>,
    /// Uploads waiting for `activating`, being prepared, or just done.
    pub uploads: uploads::Uploads,
}

impl BundleManager {
    pub fn new(
        registry: Arc<RuleRegistry>,
        db: Db,
        keys: TrustedKeys,
        caps: format::BundleCaps,
    ) -> Self {
        Self {
            registry,
            db,
            keys,
            caps,
            local: Mutex::new(HashMap::new()),
            activating: tokio::sync::Mutex::new(()),
            shadow: arc_swap::ArcSwapOption::empty(),
            uploads: uploads::Uploads::default(),
        }
    }

    pub fn local_state(&self) -> HashMap<String, LocalState> {
        self.local.lock().expect("not poisoned").clone()
    }

    /// Changes what this replica records for one bundle.
    fn update_local(&self, name: &str, change: impl FnOnce(&mut LocalState)) {
        let mut local = self.local.lock().expect("not poisoned");
        change(local.entry(name.to_string()).or_default());
    }

    /// Counts the refusal and keeps it as the bundle's last error.
    fn note_error(&self, name: &str, refusal: &Refusal) {
        crate::telemetry::metrics::METRICS
            .bundle_failures
            .with_label_values(&[name, refusal.label()])
            .inc();
        self.update_local(name, |state| {
            state.last_error = Some(refusal.to_string());
            state.last_error_at = Some(Utc::now());
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no such bundle or revision")]
    NotFound,
    /// Too many uploads are on their way; nothing was stored.
    #[error(
        "{} uploads are already waiting for activation on this replica; retry when one has finished",
        uploads::MAX_IN_FLIGHT
    )]
    Busy,
    /// This archive is already on its way.
    #[error("this bundle is already being activated (upload {})", .0.digest)]
    InFlight(Box<uploads::UploadProgress>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
