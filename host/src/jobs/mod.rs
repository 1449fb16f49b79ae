//! Scheduled jobs: the housekeeping and model work the service does on its
//! own (cache cleanup, retraining, item features, batch recommendations,
//! gauges), with every run persisted, retried, and visible through the API
//! and the console.
//!
//! - [`catalog`] (in `config`): which jobs exist, what they do, their
//!   default schedules; [`JobSettings`] (in `config`): schedules and retry
//!   policy from the environment.
//! - `store::job_runs` (below this module): the `job_runs` table, each run's
//!   states and every move between them.
//! - [`work`]: the body of each job (the same domain code the API calls).
//! - [`runner`]: one run from claim to SUCCESS or FAILURE: attempts with
//!   backoff, prerequisites first, a heartbeat, metrics.
//! - [`scheduler`]: cron firing, fleet de-duplication, the stale-run
//!   sweeper, the interaction-count retrain, and the fleet announcements.
//!
//! On a fleet the database arbitrates: a scheduled run is a row keyed by
//! (job, schedule slot), so when every replica fires for 02:00 one insert
//! wins and one replica runs it. Jobs whose effect is local to a process
//! (a retrained model, in-process caches) announce their success and the
//! other replicas follow (PostgreSQL NOTIFY).

pub mod runner;
pub mod scheduler;
pub mod work;

/// The catalogue and the settings are read at start with every other
/// setting, so they live in `config`.
pub use crate::config::{
    job_catalog::{self as catalog, JobName},
    jobs::JobSettings,
};
pub use crate::store::job_runs::{JobRun, RunStatus, Trigger};
