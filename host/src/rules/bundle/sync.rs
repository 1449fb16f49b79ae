//! Following the fleet: the database says which revision of each bundle is
//! active (with a generation bumped by every change); each replica loads
//! whatever differs from what it runs. Checked at start, every
//! [`SYNC_INTERVAL`], and at once on PostgreSQL when another replica
//! announces a change.

use std::{sync::Arc, time::Duration};

use super::{BundleManager, Refusal};
use crate::store::{bundles, millis_to_datetime, notify};

/// The actor of history events a replica records on its own while syncing.
const SYNC_ACTOR: &str = "sync";

/// How often a replica checks the database for activations made elsewhere.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);

impl BundleManager {
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
        let active = bundles::active(&self.db).await?;
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
                        bundles::load_revision(&self.db, &row.name, revision).await?
                    else {
                        continue;
                    };
                    match self.prepare_off_thread(archive, None).await {
                        Ok(prepared) => {
                            if let Err(refusal) = self.swap(&row.name, prepared.rules) {
                                self.note_error(&row.name, &refusal);
                                continue;
                            }
                            self.update_local(&row.name, |state| {
                                state.revision = Some(revision.clone());
                                state.refused_revision = None;
                                state.generation = row.generation;
                                state.last_success = Some(millis_to_datetime(row.activated_at));
                            });
                            tracing::info!(bundle = %row.name, %revision, "rule bundle synced");
                        }
                        Err(refusal) => {
                            // The fleet's active revision does not pass this
                            // replica's checks (typically: it is unsigned and
                            // BUNDLE_PUBLIC_KEYS is now set). Its rules are not
                            // run here; say so everywhere an operator looks:
                            // the log, the failure counter, the bundle's
                            // history, and `last_error` in the bundle listing.
                            let refusal = Refusal::NotLoaded(Box::new(refusal));
                            tracing::error!(bundle = %row.name, %revision, reason = %refusal, "stored rule bundle refused");
                            self.record_refusal(&row.name, revision, &refusal, SYNC_ACTOR)
                                .await?;
                            // Do not retry a refused revision every tick.
                            self.update_local(&row.name, |state| {
                                state.generation = row.generation;
                                // What ran before is gone with the restart or
                                // stays on the previous revision; either way it
                                // is not the active revision.
                                state.refused_revision = Some(revision.clone());
                            });
                            continue;
                        }
                    }
                }
                _ => {
                    self.remove_rules(&row.name);
                    self.update_local(&row.name, |state| {
                        state.revision = None;
                        state.generation = row.generation;
                    });
                }
            }
            changed += 1;
        }
        Ok(changed)
    }

    /// [`sync`](Self::sync), calling `on_change` when anything changed.
    async fn sync_then(self: &Arc<Self>, on_change: &(impl Fn() + ?Sized)) {
        match self.sync().await {
            Ok(0) => {}
            Ok(_) => on_change(),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "rule bundle sync failed"),
        }
    }

    /// On PostgreSQL: listens for activations announced by other replicas
    /// and syncs at once.
    pub fn spawn_listener(
        self: &Arc<Self>,
        database_url: String,
        on_change: impl Fn() + Send + Sync + 'static,
    ) {
        let this = self.clone();
        let on_change = Arc::new(on_change);
        notify::listen(database_url, bundles::NOTIFY_CHANNEL, move |bundle| {
            let this = this.clone();
            let on_change = on_change.clone();
            async move {
                tracing::debug!(%bundle, "bundle activation announced");
                this.sync_then(&*on_change).await;
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
                this.sync_then(&on_change).await;
            }
        });
    }
}
