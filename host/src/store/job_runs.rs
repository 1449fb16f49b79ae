//! The `job_runs` table: every run from creation to its end. A run moves
//! PENDING -> RUNNING -> (RETRY -> RUNNING)* -> SUCCESS | FAILURE; each
//! move is one conditional UPDATE, so two processes can never both claim
//! or both finish the same run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use super::{Db, millis_to_datetime, now_millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    Pending,
    Running,
    Retry,
    Success,
    Failure,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Retry,
        RunStatus::Success,
        RunStatus::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Running => "RUNNING",
            RunStatus::Retry => "RETRY",
            RunStatus::Success => "SUCCESS",
            RunStatus::Failure => "FAILURE",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    pub fn finished(self) -> bool {
        matches!(self, RunStatus::Success | RunStatus::Failure)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    /// Started first because another run requires it.
    Chain,
    /// Enough new interactions since the last retrain.
    Threshold,
}

impl Trigger {
    pub const ALL: [Trigger; 4] = [
        Trigger::Schedule,
        Trigger::Manual,
        Trigger::Chain,
        Trigger::Threshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Chain => "chain",
            Trigger::Threshold => "threshold",
        }
    }

    pub fn parse(s: &str) -> Option<Trigger> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One run as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    /// The run that required this one (trigger `chain`).
    pub parent_id: Option<i64>,
    /// Who triggered it (manual runs).
    pub requested_by: Option<String>,
    /// The replica that ran it.
    pub replica: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// What the run did (job-specific JSON), once it succeeded; `null`
    /// before that.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// The last attempt's error (kept while retrying, final on FAILURE).
    pub error: Option<String>,
}

const COLUMNS: &str = "id, job, trigger, status, attempts, max_attempts, parent_id, requested_by, \
                       owner, created_at, started_at, finished_at, result, error";

fn from_row(row: &sqlx::any::AnyRow) -> sqlx::Result<JobRun> {
    let trigger: String = row.try_get("trigger")?;
    let status: String = row.try_get("status")?;
    let started: Option<i64> = row.try_get("started_at")?;
    let finished: Option<i64> = row.try_get("finished_at")?;
    let result: Option<String> = row.try_get("result")?;
    Ok(JobRun {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        trigger: Trigger::parse(&trigger).unwrap_or(Trigger::Manual),
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failure),
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        parent_id: row.try_get("parent_id")?,
        requested_by: row.try_get("requested_by")?,
        replica: row.try_get("owner")?,
        created_at: millis_to_datetime(row.try_get("created_at")?),
        started_at: started.map(millis_to_datetime),
        finished_at: finished.map(millis_to_datetime),
        duration_ms: started.zip(finished).map(|(s, f)| f - s),
        result: result.and_then(|r| serde_json::from_str(&r).ok()),
        error: row.try_get("error")?,
    })
}

/// What a new run is.
pub struct NewRun<'a> {
    pub job: &'a str,
    pub trigger: Trigger,
    pub dedupe_key: Option<String>,
    pub parent_id: Option<i64>,
    pub requested_by: Option<&'a str>,
    pub max_attempts: u32,
    pub owner: &'a str,
}

/// Creates a PENDING run. `None` when a run with the same dedupe key exists
/// already: another replica took this slot.
pub async fn create(db: &Db, run: NewRun<'_>) -> sqlx::Result<Option<i64>> {
    let now = now_millis();
    let row = sqlx::query(
        "INSERT INTO job_runs (job, trigger, dedupe_key, parent_id, status, attempts, max_attempts, \
                               requested_by, owner, created_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, 'PENDING', 0, $5, $6, $7, $8, $8) \
         ON CONFLICT (job, dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(run.job)
    .bind(run.trigger.as_str())
    .bind(run.dedupe_key)
    .bind(run.parent_id)
    .bind(i64::from(run.max_attempts))
    .bind(run.requested_by)
    .bind(run.owner)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    row.map(|r| r.try_get::<i64, _>(0)).transpose()
}

/// PENDING or RETRY -> RUNNING, one more attempt. False when the run is not
/// waiting (someone else took it, or it was marked interrupted).
pub async fn claim(db: &Db, id: i64, owner: &str) -> sqlx::Result<bool> {
    let now = now_millis();
    let done = sqlx::query(
        "UPDATE job_runs SET status = 'RUNNING', attempts = attempts + 1, owner = $1, \
                started_at = COALESCE(started_at, $2), heartbeat_at = $2 \
         WHERE id = $3 AND status IN ('PENDING', 'RETRY')",
    )
    .bind(owner)
    .bind(now)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn heartbeat(db: &Db, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE job_runs SET heartbeat_at = $1 WHERE id = $2")
        .bind(now_millis())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// RUNNING -> RETRY with the failed attempt's error.
pub async fn mark_retry(db: &Db, id: i64, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE job_runs SET status = 'RETRY', error = $1, heartbeat_at = $2 \
         WHERE id = $3 AND status = 'RUNNING'",
    )
    .bind(error)
    .bind(now_millis())
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// RUNNING -> SUCCESS or FAILURE.
pub async fn finish(
    db: &Db,
    id: i64,
    status: RunStatus,
    result: Option<&serde_json::Value>,
    error: Option<&str>,
) -> sqlx::Result<()> {
    let now = now_millis();
    sqlx::query(
        "UPDATE job_runs SET status = $1, result = $2, error = $3, finished_at = $4, \
                started_at = COALESCE(started_at, $4), heartbeat_at = $4 \
         WHERE id = $5 AND status NOT IN ('SUCCESS', 'FAILURE')",
    )
    .bind(status.as_str())
    .bind(result.map(|r| r.to_string()))
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Runs left unfinished by a process that is gone (no heartbeat for
/// `stale_ms`) end as FAILURE with an `interrupted` error, so nothing stays
/// RUNNING forever. Returns how many.
pub async fn fail_stale(db: &Db, stale_ms: i64) -> sqlx::Result<u64> {
    let now = now_millis();
    let done = sqlx::query(
        "UPDATE job_runs SET status = 'FAILURE', finished_at = $1, \
                error = 'interrupted: the process running it stopped (shutdown or crash) before it finished' \
         WHERE status IN ('PENDING', 'RUNNING', 'RETRY') AND heartbeat_at < $2",
    )
    .bind(now)
    .bind(now - stale_ms)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// On a clean shutdown: this process's unfinished runs end now, marked
/// interrupted, rather than after the stale timeout.
pub async fn fail_owned(db: &Db, owner: &str) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE job_runs SET status = 'FAILURE', finished_at = $1, \
                error = 'interrupted: the service shut down while the run was in progress' \
         WHERE status IN ('PENDING', 'RUNNING', 'RETRY') AND owner = $2",
    )
    .bind(now_millis())
    .bind(owner)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

pub async fn get(db: &Db, id: i64) -> sqlx::Result<Option<JobRun>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

#[derive(Debug, Default, Clone)]
pub struct RunFilter<'a> {
    pub job: Option<&'a str>,
    pub status: Option<RunStatus>,
    pub trigger: Option<Trigger>,
    /// Only runs with an id below this (paging back through history).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Newest first.
pub async fn list(db: &Db, filter: &RunFilter<'_>) -> sqlx::Result<Vec<JobRun>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM job_runs \
         WHERE ($1 IS NULL OR job = $1) AND ($2 IS NULL OR status = $2) \
           AND ($3 IS NULL OR trigger = $3) AND ($4 IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $5"
    ))
    .bind(filter.job)
    .bind(filter.status.map(RunStatus::as_str))
    .bind(filter.trigger.map(Trigger::as_str))
    .bind(filter.before_id)
    .bind(filter.limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The newest run of a job, and when it last succeeded.
pub async fn latest(db: &Db, job: &str) -> sqlx::Result<(Option<JobRun>, Option<i64>)> {
    let last = list(
        db,
        &RunFilter {
            job: Some(job),
            limit: 1,
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .next();
    Ok((last, last_success(db, job).await?))
}

/// When `job` last succeeded (unix ms).
pub async fn last_success(db: &Db, job: &str) -> sqlx::Result<Option<i64>> {
    let (at,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(finished_at) FROM job_runs WHERE job = $1 AND status = 'SUCCESS'",
    )
    .bind(job)
    .fetch_one(&db.pool)
    .await?;
    Ok(at)
}

/// A run of `job` that has not finished yet, if any.
pub async fn unfinished(db: &Db, job: &str) -> sqlx::Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM job_runs WHERE job = $1 AND status IN ('PENDING', 'RUNNING', 'RETRY') \
         ORDER BY id LIMIT 1",
    )
    .bind(job)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| r.0))
}

/// When any of `jobs` last succeeded (unix ms).
pub async fn last_success_of(db: &Db, jobs: &[&str]) -> sqlx::Result<Option<i64>> {
    let mut best = None;
    for job in jobs {
        best = best.max(last_success(db, job).await?);
    }
    Ok(best)
}

/// Deletes finished runs older than `before` (unix ms).
pub async fn delete_finished_before(db: &Db, before: i64) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM job_runs WHERE status IN ('SUCCESS', 'FAILURE') AND finished_at < $1",
    )
    .bind(before)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}
