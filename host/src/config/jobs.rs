//! Job settings from the environment: one schedule per job
//! (`JOB_<NAME>_SCHEDULE`, six-field cron in UTC, or `off`), the retry
//! policy, and the interaction-count retrain.

use std::time::Duration;

use croner::{Cron, parser::CronParser};

use super::job_catalog::JobName;

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Fire jobs on their schedules (`JOBS_ENABLED`, default true). Manual
    /// triggers work either way.
    pub scheduler_enabled: bool,
    /// `None`: the job only runs when triggered.
    pub schedules: Vec<(JobName, Option<String>)>,
    /// Attempts per run before FAILURE (`JOB_MAX_ATTEMPTS`, default 3).
    pub max_attempts: u32,
    /// Wait before the first retry, doubled for each further one and capped
    /// at ten minutes (`JOB_RETRY_BACKOFF_MS`, default 30000).
    pub retry_backoff: Duration,
    /// A RUNNING run whose heartbeat is older than this is taken as
    /// interrupted (`JOB_STALE_AFTER_SECS`, default 60).
    pub stale_after: Duration,
    /// Retrain once this many interactions arrived since the last retrain
    /// (`RETRAIN_AFTER_INTERACTIONS`, default 0: off).
    pub retrain_after_interactions: u64,
    /// How often that count is checked (`RETRAIN_CHECK_SECS`, default 30).
    pub retrain_check: Duration,
    /// Finished runs older than this are deleted by `cleanup_old_cache`
    /// (`JOB_RUN_RETENTION_DAYS`, default 30).
    pub run_retention_days: u32,
    /// Recommendations stored per user (`BATCH_RECOMMENDATIONS_TOP_N`, 20).
    pub batch_top_n: usize,
    /// Users whose batch lists are computed at once
    /// (`BATCH_RECOMMENDATIONS_PARALLEL`, default 1: the job takes one
    /// core and leaves the rest to live traffic).
    pub batch_parallel: usize,
    /// A prerequisite that succeeded within this window is not re-run
    /// before its dependant (`JOB_CHAIN_FRESH_SECS`, default 7200).
    pub chain_fresh_for: Duration,
}

/// The grammar tokio-cron-scheduler fires with: seconds required, and day
/// of month and day of week both honoured.
pub fn parse_cron(pattern: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(pattern)
        .map_err(|e| {
            format!("{pattern:?} is not a six-field cron pattern (sec min hour dom mon dow): {e}")
        })
}

pub fn schedule_key(job: JobName) -> String {
    format!("JOB_{}_SCHEDULE", job.as_str().to_ascii_uppercase())
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            scheduler_enabled: true,
            schedules: JobName::ALL
                .into_iter()
                .map(|job| (job, Some(job.default_schedule().to_string())))
                .collect(),
            max_attempts: 3,
            retry_backoff: Duration::from_millis(30_000),
            stale_after: Duration::from_secs(60),
            retrain_after_interactions: 0,
            retrain_check: Duration::from_secs(30),
            run_retention_days: 30,
            batch_top_n: 20,
            batch_parallel: 1,
            chain_fresh_for: Duration::from_secs(7200),
        }
    }
}

impl JobSettings {
    /// The defaults, with what `get` sets read over them; problems go to
    /// `errors`.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>, errors: &mut Vec<String>) -> Self {
        fn number<T: std::str::FromStr>(
            get: &dyn Fn(&str) -> Option<String>,
            errors: &mut Vec<String>,
            key: &str,
            slot: &mut T,
        ) {
            if let Some(v) = get(key) {
                match v.trim().parse() {
                    Ok(n) => *slot = n,
                    Err(_) => {
                        errors.push(format!("{key}={v:?}: expected a non-negative whole number"))
                    }
                }
            }
        }
        let mut s = Self::default();
        number(get, errors, "JOB_MAX_ATTEMPTS", &mut s.max_attempts);
        number(
            get,
            errors,
            "BATCH_RECOMMENDATIONS_TOP_N",
            &mut s.batch_top_n,
        );
        number(
            get,
            errors,
            "BATCH_RECOMMENDATIONS_PARALLEL",
            &mut s.batch_parallel,
        );
        let mut stale_after = s.stale_after.as_secs();
        number(get, errors, "JOB_STALE_AFTER_SECS", &mut stale_after);
        let mut retry_backoff = s.retry_backoff.as_millis() as u64;
        number(get, errors, "JOB_RETRY_BACKOFF_MS", &mut retry_backoff);
        let mut retrain_check = s.retrain_check.as_secs();
        number(get, errors, "RETRAIN_CHECK_SECS", &mut retrain_check);
        let mut chain_fresh_for = s.chain_fresh_for.as_secs();
        number(get, errors, "JOB_CHAIN_FRESH_SECS", &mut chain_fresh_for);
        number(
            get,
            errors,
            "RETRAIN_AFTER_INTERACTIONS",
            &mut s.retrain_after_interactions,
        );
        number(
            get,
            errors,
            "JOB_RUN_RETENTION_DAYS",
            &mut s.run_retention_days,
        );

        if !(1..=20).contains(&s.max_attempts) {
            errors.push("JOB_MAX_ATTEMPTS must be 1..=20".into());
        }
        if !(1..=64).contains(&s.batch_parallel) {
            errors.push("BATCH_RECOMMENDATIONS_PARALLEL must be 1..=64".into());
        }
        if !(1..=100).contains(&s.batch_top_n) {
            errors.push("BATCH_RECOMMENDATIONS_TOP_N must be 1..=100".into());
        }
        if stale_after < 2 {
            errors.push("JOB_STALE_AFTER_SECS must be at least 2".into());
        }
        match get("JOBS_ENABLED").map(|v| v.trim().to_ascii_lowercase()) {
            None => {}
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => {
                s.scheduler_enabled = true
            }
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => {
                s.scheduler_enabled = false
            }
            Some(v) => errors.push(format!("JOBS_ENABLED={v:?}: expected true or false")),
        }
        for (job, schedule) in &mut s.schedules {
            let key = schedule_key(*job);
            let Some(value) = get(&key) else { continue };
            let value = value.trim();
            if ["off", "never", "none"].contains(&value.to_ascii_lowercase().as_str()) {
                *schedule = None;
                continue;
            }
            if let Err(e) = parse_cron(value) {
                errors.push(format!("{key}: {e}"));
            }
            *schedule = Some(value.to_string());
        }
        s.stale_after = Duration::from_secs(stale_after);
        s.retry_backoff = Duration::from_millis(retry_backoff);
        s.retrain_check = Duration::from_secs(retrain_check.max(1));
        s.chain_fresh_for = Duration::from_secs(chain_fresh_for);
        s
    }

    pub fn schedule(&self, job: JobName) -> Option<&str> {
        self.schedules
            .iter()
            .find(|(j, _)| *j == job)
            .and_then(|(_, s)| s.as_deref())
    }

    pub fn set_schedule(&mut self, job: JobName, schedule: Option<&str>) {
        for (j, s) in &mut self.schedules {
            if *j == job {
                *s = schedule.map(str::to_string);
            }
        }
    }

    /// The wait before retry number `attempt` (1 = the first retry).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.retry_backoff * factor).min(Duration::from_secs(600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> (JobSettings, Vec<String>) {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut errors = Vec::new();
        let s = JobSettings::from_lookup(&|k| map.get(k).cloned(), &mut errors);
        (s, errors)
    }

    #[test]
    fn defaults_are_the_seed_schedule() {
        let (s, errors) = settings(&[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            s.schedule(JobName::RetrainCollaborativeModel),
            Some("0 0 2 * * *")
        );
        assert_eq!(s.schedule(JobName::UpdateMetrics), Some("0 */5 * * * *"));
        assert_eq!(s.max_attempts, 3);
    }

    #[test]
    fn schedules_can_change_or_be_switched_off_and_bad_ones_are_refused() {
        let (s, errors) = settings(&[
            ("JOB_CLEANUP_OLD_CACHE_SCHEDULE", "off"),
            ("JOB_UPDATE_METRICS_SCHEDULE", "*/30 * * * * *"),
            ("JOB_RETRAIN_COLLABORATIVE_MODEL_SCHEDULE", "every day"),
        ]);
        assert_eq!(s.schedule(JobName::CleanupOldCache), None);
        assert_eq!(s.schedule(JobName::UpdateMetrics), Some("*/30 * * * * *"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("JOB_RETRAIN_COLLABORATIVE_MODEL_SCHEDULE"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let (s, _) = settings(&[("JOB_RETRY_BACKOFF_MS", "1000")]);
        assert_eq!(s.backoff(1), Duration::from_secs(1));
        assert_eq!(s.backoff(2), Duration::from_secs(2));
        assert_eq!(s.backoff(3), Duration::from_secs(4));
        assert_eq!(s.backoff(30), Duration::from_secs(600));
    }
}
