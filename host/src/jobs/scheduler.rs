//! Background parts of the job system: cron firing (tokio-cron-scheduler),
//! the sweep that ends runs whose process died, the retrain after enough
//! new interactions, and the fleet announcements.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::{JobName, Trigger, catalog::Scope, work};
use crate::config::jobs::parse_cron;
use crate::{
    AppState,
    store::{Dialect, interactions, job_runs, notify},
};

/// The channel replicas announce finished jobs on.
const NOTIFY_CHANNEL: &str = "recengine_jobs";

/// Starts everything that runs on its own. Called once per process, after
/// the state is built.
pub async fn start(state: &AppState) -> anyhow::Result<()> {
    spawn_sweeper(state.clone());
    if state.settings.jobs.retrain_after_interactions > 0 {
        spawn_threshold_retrain(state.clone());
    }
    if state.db.dialect == Dialect::Postgres {
        spawn_listener(state.clone());
    }
    if !state.settings.jobs.scheduler_enabled {
        tracing::info!("job scheduler off (JOBS_ENABLED=false): jobs run when triggered");
        return Ok(());
    }
    let scheduler = JobScheduler::new().await?;
    for (job, pattern) in &state.settings.jobs.schedules {
        let (job, Some(pattern)) = (*job, pattern.clone()) else {
            continue;
        };
        let fire_state = state.clone();
        let fire_pattern = pattern.clone();
        let entry = Job::new_async(pattern.as_str(), move |_uuid, _scheduler| {
            let state = fire_state.clone();
            let pattern = fire_pattern.clone();
            Box::pin(async move { fire(&state, job, &pattern).await })
        })?;
        scheduler.add(entry).await?;
    }
    scheduler.start().await?;
    if let Ok(mut slot) = state.jobs.scheduler.lock() {
        *slot = Some(scheduler);
    }
    tracing::info!("job scheduler started");
    Ok(())
}

/// The schedule slot a firing belongs to: the latest time the pattern
/// matches at or just before now. Every replica computes the same slot for
/// the same firing, whatever its clock jitter within a second.
pub fn slot(pattern: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cron = parse_cron(pattern).ok()?;
    // Whole seconds: croner keeps the sub-second part of the time it is
    // given, which would make each replica's slot its own.
    let probe = (now + chrono::Duration::milliseconds(999)).trunc_subsecs(0);
    cron.find_previous_occurrence(&probe, true).ok()
}

/// When the pattern fires next.
pub fn next_run(pattern: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    parse_cron(pattern)
        .ok()?
        .find_next_occurrence(&now.trunc_subsecs(0), false)
        .ok()
}

async fn fire(state: &AppState, job: JobName, pattern: &str) {
    let Some(slot) = slot(pattern, Utc::now()) else {
        return;
    };
    let slot = slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let key = match job.scope() {
        Scope::Fleet => slot,
        // Every replica runs it: the key is per replica.
        Scope::Replica => format!("{slot}@{}", state.jobs.instance),
    };
    match state
        .jobs
        .start(state, job, Trigger::Schedule, Some(key.clone()), None)
        .await
    {
        Ok(Some(id)) => tracing::debug!(job = %job, run = id, slot = %key, "scheduled run"),
        Ok(None) => tracing::debug!(job = %job, slot = %key, "slot taken by another replica"),
        Err(e) => {
            tracing::error!(job = %job, error = %format!("{e:#}"), "cannot start scheduled run")
        }
    }
}

/// Ends runs nobody is alive to finish: at start (a crash before this
/// restart) and then every half stale period.
fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        let stale = state.settings.jobs.stale_after;
        loop {
            match job_runs::fail_stale(&state.db, stale.as_millis() as i64).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    runs = n,
                    "job runs interrupted (no heartbeat) marked FAILURE"
                ),
                Err(e) => tracing::warn!(error = %e, "stale job run sweep failed"),
            }
            tokio::time::sleep(stale / 2).await;
        }
    });
}

/// Retrains once `RETRAIN_AFTER_INTERACTIONS` interactions arrived since
/// the last successful retrain (or item-feature update, which retrains).
/// The baseline comes from the database, so every replica sees the same one
/// and the dedupe key makes the retrain happen once.
fn spawn_threshold_retrain(state: AppState) {
    tokio::spawn(async move {
        let settings = &state.settings.jobs;
        loop {
            tokio::time::sleep(settings.retrain_check).await;
            if let Err(e) = check_threshold(&state).await {
                tracing::warn!(error = %format!("{e:#}"), "interaction-count retrain check failed");
            }
        }
    });
}

async fn check_threshold(state: &AppState) -> anyhow::Result<()> {
    let baseline = job_runs::last_success_of(
        &state.db,
        &[
            JobName::RetrainCollaborativeModel.as_str(),
            JobName::UpdateItemFeatures.as_str(),
        ],
    )
    .await?
    .unwrap_or_else(|| state.recommender.snapshot().trained_at.timestamp_millis());
    let new = interactions::count_since(&state.db, baseline).await?;
    if (new as u64) < state.settings.jobs.retrain_after_interactions {
        return Ok(());
    }
    let key = format!("after:{baseline}");
    if let Some(id) = state
        .jobs
        .start(
            state,
            JobName::RetrainCollaborativeModel,
            Trigger::Threshold,
            Some(key),
            None,
        )
        .await?
    {
        tracing::info!(
            run = id,
            new_interactions = new,
            "retrain: enough new interactions"
        );
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Announcement {
    job: JobName,
    origin: String,
}

/// Tells the other replicas a job changed what they hold in process.
pub async fn announce(state: &AppState, job: JobName) {
    if state.db.dialect != Dialect::Postgres {
        return;
    }
    let payload = serde_json::to_string(&Announcement {
        job,
        origin: state.jobs.instance.clone(),
    })
    .unwrap_or_default();
    if let Err(e) = notify::notify(&state.db.pool, NOTIFY_CHANNEL, &payload).await {
        tracing::warn!(job = %job, error = %e, "cannot announce the job to the fleet");
    }
}

/// Follows the other replicas' announcements: reload the models after
/// their retrain, purge this process's caches after their cleanup.
fn spawn_listener(state: AppState) {
    let database_url = state.settings.database_url.clone();
    notify::listen(database_url, NOTIFY_CHANNEL, move |payload| {
        let state = state.clone();
        async move {
            let Ok(a) = serde_json::from_str::<Announcement>(&payload) else {
                return;
            };
            if a.origin != state.jobs.instance {
                follow(&state, a.job).await;
            }
        }
    });
}

async fn follow(state: &AppState, job: JobName) {
    tracing::info!(job = %job, "following a job another replica ran");
    match job {
        JobName::RetrainCollaborativeModel | JobName::UpdateItemFeatures => {
            if let Err(e) = state.retrain().await {
                tracing::warn!(error = %format!("{e:#}"), "retrain after the fleet's failed");
            }
            if job == JobName::UpdateItemFeatures {
                state.features.items.invalidate_all().await;
            }
        }
        JobName::CleanupOldCache => {
            work::purge_local_caches(state);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_firing_maps_to_its_slot_despite_jitter() {
        let t = |h, m, s, ms| {
            Utc.with_ymd_and_hms(2026, 11, 26, h, m, s).unwrap()
                + chrono::Duration::milliseconds(ms)
        };
        let slot_at_2 = t(2, 0, 0, 0);
        // Early by a few ms on one replica, late on another: one slot.
        assert_eq!(slot("0 0 2 * * *", t(1, 59, 59, 700)), Some(slot_at_2));
        assert_eq!(slot("0 0 2 * * *", t(2, 0, 0, 400)), Some(slot_at_2));
        assert_eq!(
            next_run("0 0 2 * * *", t(2, 0, 0, 400)),
            Some(t(2, 0, 0, 0) + chrono::Duration::days(1))
        );
        assert_eq!(slot("*/5 * * * * *", t(2, 0, 7, 10)), Some(t(2, 0, 5, 0)));
    }
}
