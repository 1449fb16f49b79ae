//! Running one job run to its end: claim it, run its prerequisites, try
//! the job up to `max_attempts` times with a doubling backoff, keep a
//! heartbeat while alive, record the outcome and the metrics, and tell the
//! other replicas when their state must follow.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio_util::task::TaskTracker;

use super::{JobName, RunStatus, Trigger, work};
use crate::{
    AppState,
    store::{
        job_runs::{self, NewRun},
        now_millis,
    },
    telemetry::metrics::METRICS,
};

/// This process's part in the job system.
pub struct Jobs {
    /// Names this process in `job_runs.owner` and in fleet announcements.
    pub instance: String,
    /// Kept so the cron scheduler lives as long as the service.
    pub(super) scheduler: Mutex<Option<tokio_cron_scheduler::JobScheduler>>,
    /// Runs being created, so a clean shutdown waits for a firing that
    /// is mid-insert instead of marking the runs before that row exists.
    creating: TaskTracker,
    /// Set once shutdown begins: no scheduled or threshold run is created
    /// after it.
    closing: AtomicBool,
}

/// How long a clean shutdown waits for runs being created (one insert,
/// bounded by the pool's acquire timeout) before marking its runs.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

impl Jobs {
    pub fn new() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "recengine".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            instance: format!("{host}-{}", &suffix[..8]),
            scheduler: Mutex::new(None),
            creating: TaskTracker::new(),
            closing: AtomicBool::new(false),
        }
    }

    /// Creates a run and starts it in the background: the `delay()` of the
    /// API. `None` when the dedupe key is taken (another replica has this
    /// slot, or the process is shutting down and the run would start on its
    /// own).
    pub async fn start(
        &self,
        state: &AppState,
        job: JobName,
        trigger: Trigger,
        dedupe_key: Option<String>,
        requested_by: Option<&str>,
    ) -> anyhow::Result<Option<i64>> {
        // Counted before `closing` is read, so a shutdown that sets it
        // afterwards waits for this row to exist before it marks the runs.
        let creating = self.creating.token();
        // What fires on its own stops with the shutdown; a manual trigger
        // cannot arrive then (the server has stopped taking requests).
        let background = matches!(trigger, Trigger::Schedule | Trigger::Threshold);
        if background && self.closing.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let id = job_runs::create(
            &state.db,
            NewRun {
                job: job.as_str(),
                trigger,
                dedupe_key,
                parent_id: None,
                requested_by,
                max_attempts: state.settings.jobs.max_attempts,
                owner: &self.instance,
            },
        )
        .await?;
        drop(creating);
        if let Some(id) = id {
            let state = state.clone();
            tokio::spawn(async move { execute(&state, id, job).await });
        }
        Ok(id)
    }

    /// On a clean shutdown: this process's unfinished runs are marked
    /// interrupted now (a crash is caught by the stale-heartbeat sweep).
    pub async fn shutdown(&self, state: &AppState) {
        self.closing.store(true, Ordering::SeqCst);
        let scheduler = self.scheduler.lock().ok().and_then(|mut s| s.take());
        if let Some(mut scheduler) = scheduler {
            let _ = scheduler.shutdown().await;
        }
        self.creating.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.creating.wait())
            .await
            .is_err()
        {
            tracing::warn!("a job run was still being created after the shutdown grace period");
        }
        match job_runs::fail_owned(&state.db, &self.instance).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(runs = n, "job runs interrupted by the shutdown"),
            Err(e) => tracing::warn!(error = %e, "could not mark interrupted job runs"),
        }
    }
}

/// Aborts the heartbeat task when the run ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `id` to SUCCESS or FAILURE and returns which. A run this process
/// cannot claim (already taken, or marked interrupted) is left alone.
pub async fn execute(state: &AppState, id: i64, job: JobName) -> RunStatus {
    let db = &state.db;
    let instance = state.jobs.instance.clone();
    match job_runs::claim(db, id, &instance).await {
        Ok(true) => {}
        Ok(false) => return RunStatus::Failure,
        Err(e) => {
            tracing::error!(run = id, job = %job, error = %e, "cannot claim job run");
            return RunStatus::Failure;
        }
    }
    let settings = &state.settings.jobs;
    let _heartbeat = {
        let db = db.clone();
        let every = settings.stale_after / 4;
        AbortOnDrop(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = job_runs::heartbeat(&db, id).await {
                    tracing::warn!(run = id, error = %e, "job heartbeat failed");
                }
            }
        }))
    };
    let running = METRICS.jobs_running.with_label_values(&[job.as_str()]);
    running.inc();
    let started = Instant::now();
    tracing::info!(run = id, job = %job, "job run started");

    let outcome = match prerequisites(state, id, job).await {
        Err(e) => Err(e),
        Ok(()) => attempts(state, id, job).await,
    };
    let status = match &outcome {
        Ok(_) => RunStatus::Success,
        Err(_) => RunStatus::Failure,
    };
    let (result, error) = match outcome {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    if let Err(e) = job_runs::finish(db, id, status, result.as_ref(), error.as_deref()).await {
        tracing::error!(run = id, job = %job, error = %e, "cannot record the job run's end");
    }
    running.dec();
    let m = &*METRICS;
    m.job_runs
        .with_label_values(&[job.as_str(), status.as_str()])
        .inc();
    m.job_duration
        .with_label_values(&[job.as_str()])
        .observe(started.elapsed().as_secs_f64());
    match &error {
        None => {
            m.job_last_success
                .with_label_values(&[job.as_str()])
                .set(now_millis() as f64 / 1e3);
            tracing::info!(run = id, job = %job, seconds = started.elapsed().as_secs_f64(), "job run succeeded");
            if job.announce() {
                super::scheduler::announce(state, job).await;
            }
        }
        Some(e) => tracing::error!(run = id, job = %job, error = %e, "job run failed"),
    }
    status
}

/// Runs each prerequisite that has not succeeded within
/// `JOB_CHAIN_FRESH_SECS`, as its own run (trigger `chain`).
async fn prerequisites(state: &AppState, id: i64, job: JobName) -> Result<(), String> {
    let fresh_after = now_millis() - state.settings.jobs.chain_fresh_for.as_millis() as i64;
    for &required in job.requires() {
        let last = job_runs::last_success(&state.db, required.as_str())
            .await
            .map_err(|e| e.to_string())?;
        if last.is_some_and(|at| at >= fresh_after) {
            continue;
        }
        let child = job_runs::create(
            &state.db,
            NewRun {
                job: required.as_str(),
                trigger: Trigger::Chain,
                dedupe_key: None,
                parent_id: Some(id),
                requested_by: None,
                max_attempts: state.settings.jobs.max_attempts,
                owner: &state.jobs.instance,
            },
        )
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the prerequisite run could not be created")?;
        let status = Box::pin(execute(state, child, required)).await;
        if status != RunStatus::Success {
            return Err(format!("prerequisite {required} failed (run {child})"));
        }
    }
    Ok(())
}

/// The job itself, retried with backoff. Each attempt runs in its own task
/// so a panic is an error of that attempt, not of the service.
async fn attempts(state: &AppState, id: i64, job: JobName) -> Result<Value, String> {
    let settings = &state.settings.jobs;
    let mut attempt = 1;
    loop {
        let attempt_state = state.clone();
        let outcome = tokio::spawn(async move { work::run(&attempt_state, job, id).await }).await;
        let error = match outcome {
            Ok(Ok(result)) => return Ok(result),
            Ok(Err(e)) => format!("{e:#}"),
            Err(e) if e.is_panic() => "the job panicked".to_string(),
            Err(e) => format!("the job was cancelled: {e}"),
        };
        if attempt >= settings.max_attempts {
            return Err(format!(
                "attempt {attempt} of {}: {error}",
                settings.max_attempts
            ));
        }
        tracing::warn!(run = id, job = %job, attempt, error = %error, "job attempt failed; retrying");
        METRICS
            .job_runs
            .with_label_values(&[job.as_str(), RunStatus::Retry.as_str()])
            .inc();
        job_runs::mark_retry(&state.db, id, &format!("attempt {attempt}: {error}"))
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(settings.backoff(attempt)).await;
        if !job_runs::claim(&state.db, id, &state.jobs.instance)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(format!(
                "the run was taken over while waiting to retry; last error: {error}"
            ));
        }
        attempt += 1;
    }
}
