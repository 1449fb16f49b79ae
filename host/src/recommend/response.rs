//! What a recommendation request answers, and the stored batch lists in
//! the same shape.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{rules::pipeline::RuleTrace, store::batch_recommendations::StoredList};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recommendation {
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    /// The model's score relative to the best candidate's (1), after the
    /// rules' boosts.
    pub score: f64,
    pub rank: usize,
    /// Placed by a promote rule (sponsored or campaign content a client
    /// may label as such), rather than ranked by the models.
    #[serde(default)]
    pub promoted: bool,
    /// The promote rule that placed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecommendationResponse {
    pub user_id: i64,
    pub algorithm: String,
    pub recommendations: Vec<Recommendation>,
    pub generated_at: DateTime<Utc>,
    /// Whether the business rules ran.
    pub rules_applied: bool,
    /// Set when a fail-closed rule failed and the list was withheld: the
    /// rule's name. The list is then empty on purpose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// `popularity` when the user has no interactions the models know
    /// (cold start) and popular items were served instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The model snapshot that produced the list.
    pub model_version: u64,
    /// Served from the recommendation cache.
    pub cached: bool,
    /// Per-rule trace, with `explain=true` (never cached).
    #[serde(skip_serializing_if = "Option::is_none", default, skip_deserializing)]
    pub rule_trace: Option<Vec<RuleTrace>>,
}

/// The list the `generate_batch_recommendations` job stored for a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchRecommendations {
    pub user_id: i64,
    pub algorithm: String,
    pub recommendations: Vec<Recommendation>,
    pub model_version: i64,
    /// The job run that made the list.
    pub run_id: Option<i64>,
    pub generated_at: DateTime<Utc>,
}

impl From<StoredList> for BatchRecommendations {
    fn from(list: StoredList) -> Self {
        Self {
            user_id: list.user_id,
            algorithm: list.algorithm,
            recommendations: serde_json::from_str(&list.items_json).unwrap_or_default(),
            model_version: list.model_version,
            run_id: list.run_id,
            generated_at: list.generated_at,
        }
    }
}
