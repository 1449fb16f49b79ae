//! The jobs this service runs: names (stable: they are API paths, metric
//! labels and database values), descriptions, default schedules, and what
//! each depends on.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobName {
    CleanupOldCache,
    RetrainCollaborativeModel,
    UpdateItemFeatures,
    GenerateBatchRecommendations,
    UpdateMetrics,
}

/// Where a job's effect lives, which decides how a fleet runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Shared state (the database, the models every replica reloads): once
    /// per schedule slot across the fleet.
    Fleet,
    /// This process's own state (its gauges): every replica runs it.
    Replica,
}

impl JobName {
    pub const ALL: [JobName; 5] = [
        JobName::CleanupOldCache,
        JobName::RetrainCollaborativeModel,
        JobName::UpdateItemFeatures,
        JobName::GenerateBatchRecommendations,
        JobName::UpdateMetrics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobName::CleanupOldCache => "cleanup_old_cache",
            JobName::RetrainCollaborativeModel => "retrain_collaborative_model",
            JobName::UpdateItemFeatures => "update_item_features",
            JobName::GenerateBatchRecommendations => "generate_batch_recommendations",
            JobName::UpdateMetrics => "update_metrics",
        }
    }

    pub fn parse(name: &str) -> Option<JobName> {
        Self::ALL.into_iter().find(|j| j.as_str() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            JobName::CleanupOldCache => {
                "Purges expired cache entries, expired refresh tokens and job runs older than the retention"
            }
            JobName::RetrainCollaborativeModel => {
                "Retrains every model from the interactions and swaps the serving snapshot"
            }
            JobName::UpdateItemFeatures => {
                "Recomputes item popularity, rebuilds TF-IDF over the catalogue, refreshes item features"
            }
            JobName::GenerateBatchRecommendations => {
                "Stores the top recommendations of every user (served by /recommendations/user/{id}/batch)"
            }
            JobName::UpdateMetrics => {
                "Sets the active_users, active_items and total_interactions gauges from the database"
            }
        }
    }

    /// Six-field cron (seconds first), UTC: the seed's Celery beat times.
    pub fn default_schedule(self) -> &'static str {
        match self {
            JobName::CleanupOldCache => "0 0 1 * * *",
            JobName::RetrainCollaborativeModel => "0 0 2 * * *",
            JobName::UpdateItemFeatures => "0 0 3 * * *",
            JobName::GenerateBatchRecommendations => "0 0 4 * * *",
            JobName::UpdateMetrics => "0 */5 * * * *",
        }
    }

    pub fn scope(self) -> Scope {
        match self {
            JobName::UpdateMetrics => Scope::Replica,
            _ => Scope::Fleet,
        }
    }

    /// Jobs that must have succeeded recently before this one runs; the
    /// runner starts them first (trigger `chain`) when they have not.
    pub fn requires(self) -> &'static [JobName] {
        match self {
            // Lists are only as good as the item features they rank with.
            JobName::GenerateBatchRecommendations => &[JobName::UpdateItemFeatures],
            _ => &[],
        }
    }

    /// Whether the other replicas must follow a success (their own models
    /// or in-process caches changed on the one that ran it).
    pub fn announce(self) -> bool {
        matches!(
            self,
            JobName::RetrainCollaborativeModel
                | JobName::UpdateItemFeatures
                | JobName::CleanupOldCache
        )
    }
}

impl std::fmt::Display for JobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for job in JobName::ALL {
            assert_eq!(JobName::parse(job.as_str()), Some(job));
            assert_eq!(
                serde_json::to_value(job).unwrap(),
                serde_json::json!(job.as_str())
            );
        }
        assert_eq!(JobName::parse("rm -rf"), None);
    }
}
