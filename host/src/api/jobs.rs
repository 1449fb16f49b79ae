//! `/api/v1/jobs`: the scheduled jobs, their runs, and manual triggers
//! (Celery's `delay()`, `status` and `get()`). Ops or admin only: run
//! errors can name internals.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    doc::{JobPath, RunId},
    extract::{ApiPath, ApiQuery, Validate},
};
use crate::{
    AppState,
    auth::extract::Ops,
    error::{AppError, AppResult},
    jobs::{JobName, JobRun, RunStatus, Trigger, catalog::Scope, scheduler},
    store::{
        job_runs::{self, RunFilter},
        millis_to_datetime,
    },
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(trigger))
}

fn job_of(name: &str) -> AppResult<JobName> {
    JobName::parse(name).ok_or_else(|| {
        AppError::NotFound(format!(
            "Unknown job {name:?}; jobs are: {}",
            JobName::ALL.map(JobName::as_str).join(", ")
        ))
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobView {
    pub name: JobName,
    pub description: &'static str,
    /// Six-field cron (seconds first), UTC; `null`: only runs when triggered.
    pub schedule: Option<String>,
    /// `fleet`: once per schedule slot across replicas; `replica`: each.
    pub scope: Scope,
    /// Jobs run first unless they succeeded recently.
    pub requires: Vec<JobName>,
    /// `null` when the schedule is off or the scheduler is disabled.
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<JobRun>,
    pub last_success_at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", security(("bearer" = [])),
    responses((status = 200, body = [JobView]), (status = 403)))]
pub async fn list_jobs(State(state): State<AppState>, _: Ops) -> AppResult<Json<Vec<JobView>>> {
    let settings = &state.settings.jobs;
    let now = Utc::now();
    let mut out = Vec::new();
    for job in JobName::ALL {
        let schedule = settings.schedule(job).map(str::to_string);
        let (last_run, last_success) = job_runs::latest(&state.db, job.as_str()).await?;
        out.push(JobView {
            name: job,
            description: job.description(),
            next_run: schedule
                .as_deref()
                .filter(|_| settings.scheduler_enabled)
                .and_then(|s| scheduler::next_run(s, now)),
            schedule,
            scope: job.scope(),
            requires: job.requires().to_vec(),
            last_run,
            last_success_at: last_success.map(millis_to_datetime),
        });
    }
    Ok(Json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Triggered {
    pub run_id: i64,
    pub job: JobName,
    pub status: RunStatus,
    /// Where to poll the run.
    pub status_url: String,
}

/// Starts a run now; answers at once with its id (202). Poll
/// `/jobs/runs/{run_id}` for its status and result. 409 while a run of the
/// same job is unfinished.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/trigger", tag = "jobs", params(JobPath),
    security(("bearer" = [])),
    responses((status = 202, body = Triggered), (status = 403),
        (status = 404, description = "No such job"),
        (status = 409, description = "A run of this job is unfinished")))]
pub async fn trigger(
    State(state): State<AppState>,
    Ops(caller): Ops,
    ApiPath(name): ApiPath<String>,
) -> AppResult<impl IntoResponse> {
    let job = job_of(&name)?;
    // One at a time: a second click while a run is in progress would only
    // queue the same work behind it.
    if let Some(running) = job_runs::unfinished(&state.db, job.as_str()).await? {
        return Err(AppError::Conflict(format!(
            "{job} is already running (run {running}); see /api/v1/jobs/runs/{running}"
        )));
    }
    let run_id = state
        .jobs
        .start(&state, job, Trigger::Manual, None, Some(&caller.email))
        .await?
        .ok_or_else(|| AppError::Conflict("the run could not be created".into()))?;
    let status_url = format!("/api/v1/jobs/runs/{run_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, status_url.clone())],
        Json(Triggered {
            run_id,
            job,
            status: RunStatus::Pending,
            status_url,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/jobs/runs/{id}", tag = "jobs", params(RunId),
    security(("bearer" = [])),
    responses((status = 200, body = JobRun), (status = 403), (status = 404)))]
pub async fn get_run(
    State(state): State<AppState>,
    _: Ops,
    ApiPath(id): ApiPath<i64>,
) -> AppResult<Json<JobRun>> {
    job_runs::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("Job run {id} not found")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// Only this job's runs (another name is 404).
    #[param(inline, value_type = Option<JobName>)]
    pub job: Option<String>,
    /// Only runs in this status.
    #[param(inline, value_type = Option<RunStatus>)]
    pub status: Option<String>,
    /// Only runs started this way.
    #[param(inline, value_type = Option<Trigger>)]
    pub trigger: Option<String>,
    /// Runs older than this id (the next page: the last id seen).
    pub before_id: Option<i64>,
    /// 1 to 500 (default 50), newest first.
    #[serde(default = "fifty")]
    #[param(minimum = 1, maximum = 500)]
    pub limit: i64,
}

fn fifty() -> i64 {
    50
}

impl Validate for RunParams {
    fn validate(&self) -> Result<(), String> {
        if !(1..=500).contains(&self.limit) {
            return Err("limit must be between 1 and 500".into());
        }
        Ok(())
    }
}

#[utoipa::path(get, path = "/api/v1/jobs/runs", tag = "jobs", params(RunParams),
    security(("bearer" = [])),
    responses((status = 200, body = [JobRun]), (status = 403),
        (status = 404, description = "No such job")))]
pub async fn list_runs(
    State(state): State<AppState>,
    _: Ops,
    ApiQuery(p): ApiQuery<RunParams>,
) -> AppResult<Json<Vec<JobRun>>> {
    let status = one_of(
        p.status.as_deref(),
        "status",
        RunStatus::parse,
        RunStatus::ALL.map(RunStatus::as_str),
    )?;
    let trigger = one_of(
        p.trigger.as_deref(),
        "trigger",
        Trigger::parse,
        Trigger::ALL.map(Trigger::as_str),
    )?;
    let filter = RunFilter {
        job: p
            .job
            .as_deref()
            .map(job_of)
            .transpose()?
            .map(JobName::as_str),
        status,
        trigger,
        before_id: p.before_id,
        limit: p.limit,
    };
    Ok(Json(job_runs::list(&state.db, &filter).await?))
}

/// An optional filter value that must be one of `names`.
fn one_of<T, const N: usize>(
    value: Option<&str>,
    field: &str,
    parse: fn(&str) -> Option<T>,
    names: [&str; N],
) -> AppResult<Option<T>> {
    value
        .map(|v| {
            parse(v).ok_or_else(|| {
                AppError::Validation(format!("{field} must be one of {}", names.join(", ")))
            })
        })
        .transpose()
}
