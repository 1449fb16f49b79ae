//! User features, computed from the user's row and their interactions.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::Confidence;
use crate::{
    error::AppResult,
    store::{Db, feature_rows, millis_to_datetime, now_millis},
};

/// Interactions in the last 30 days at which `activity_score` reaches 1
/// (about one a day).
pub const ACTIVE_INTERACTIONS_PER_30_DAYS: f64 = 30.0;
/// `recency_score` = exp(−days since the last interaction / this).
pub const RECENCY_DECAY_DAYS: f64 = 30.0;
/// How many categories `favorite_categories` lists.
pub const FAVORITE_CATEGORIES: usize = 3;

const DAY_MS: f64 = 86_400_000.0;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemWeight {
    pub item_id: i64,
    /// The confidence the models see, in (0, 1].
    pub weight: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserFeatures {
    pub user_id: i64,
    pub total_interactions: i64,
    /// Interactions per type.
    pub interaction_types: BTreeMap<String, i64>,
    /// Mean of the user's explicit ratings, if any.
    pub avg_rating: Option<f64>,
    /// Interactions per category of the items touched.
    pub category_counts: BTreeMap<String, i64>,
    /// The most interacted-with categories, most first (ties by name).
    pub favorite_categories: Vec<String>,
    /// 0-1: interactions in the last 30 days / 30, capped at 1.
    pub activity_score: f64,
    /// 0-1: exp(−days since the last interaction / 30); 0 with none.
    pub recency_score: f64,
    pub account_age_days: f64,
    #[schema(value_type = Object)]
    pub preferences: Value,
    /// Distinct items the user purchased, ascending.
    pub purchased_item_ids: Vec<i64>,
    /// Distinct items the user interacted with and the combined confidence
    /// of those interactions: the profile the models score.
    pub item_weights: Vec<ItemWeight>,
    pub last_interaction_at: Option<DateTime<Utc>>,
    pub computed_at: DateTime<Utc>,
}

/// One query for the users, one for all their interactions.
pub async fn compute(
    db: &Db,
    confidence: &Confidence,
    ids: &[i64],
) -> AppResult<Vec<UserFeatures>> {
    let ids: Vec<i64> = {
        let mut v = ids.to_vec();
        v.sort_unstable();
        v.dedup();
        v
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let users = feature_rows::users(db, &ids).await?;
    let mut by_user: HashMap<i64, Vec<feature_rows::UserInteraction>> = HashMap::new();
    for row in feature_rows::user_interactions(db, &ids).await? {
        by_user.entry(row.signal.user_id).or_default().push(row);
    }
    let now = now_millis();
    Ok(users
        .into_iter()
        .map(
            |feature_rows::UserRow {
                 id,
                 preferences,
                 created_at,
             }| {
                let rows = by_user.remove(&id).unwrap_or_default();
                let mut types: BTreeMap<String, i64> = BTreeMap::new();
                let mut categories: BTreeMap<String, i64> = BTreeMap::new();
                let mut weights: BTreeMap<i64, f32> = BTreeMap::new();
                let mut purchased = Vec::new();
                let (mut rating_sum, mut ratings) = (0.0, 0);
                let mut last: Option<i64> = None;
                let mut recent = 0;
                for row in &rows {
                    let signal = &row.signal;
                    let kind = &signal.interaction_type;
                    let at = signal.created_at;
                    *types.entry(kind.clone()).or_default() += 1;
                    if let Some(c) = &row.category {
                        *categories.entry(c.clone()).or_default() += 1;
                    }
                    *weights.entry(signal.item_id).or_default() +=
                        confidence.of(kind, signal.rating, signal.weight);
                    if kind == "purchase" {
                        purchased.push(signal.item_id);
                    }
                    if let Some(r) = signal.rating {
                        rating_sum += r;
                        ratings += 1;
                    }
                    last = Some(last.map_or(at, |l| l.max(at)));
                    if (now - at) as f64 <= 30.0 * DAY_MS {
                        recent += 1;
                    }
                }
                purchased.sort_unstable();
                purchased.dedup();
                let mut favorite: Vec<(&String, &i64)> = categories.iter().collect();
                favorite.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                UserFeatures {
                    user_id: id,
                    total_interactions: rows.len() as i64,
                    interaction_types: types,
                    avg_rating: (ratings > 0).then(|| rating_sum / f64::from(ratings)),
                    favorite_categories: favorite
                        .into_iter()
                        .take(FAVORITE_CATEGORIES)
                        .map(|(c, _)| c.clone())
                        .collect(),
                    category_counts: categories,
                    activity_score: (f64::from(recent) / ACTIVE_INTERACTIONS_PER_30_DAYS).min(1.0),
                    recency_score: last.map_or(0.0, |l| {
                        (-((now - l).max(0) as f64 / DAY_MS) / RECENCY_DECAY_DAYS).exp()
                    }),
                    account_age_days: ((now - created_at).max(0) as f64 / DAY_MS * 100.0).round()
                        / 100.0,
                    preferences: serde_json::from_str(&preferences)
                        .unwrap_or_else(|_| Value::Object(Default::default())),
                    purchased_item_ids: purchased,
                    item_weights: weights
                        .into_iter()
                        .map(|(item_id, w)| ItemWeight {
                            item_id,
                            weight: Confidence::combine(w),
                        })
                        .collect(),
                    last_interaction_at: last.map(millis_to_datetime),
                    computed_at: millis_to_datetime(now),
                }
            },
        )
        .collect())
}

impl UserFeatures {
    /// The profile as (item id, confidence) pairs.
    pub fn profile(&self) -> Vec<(i64, f32)> {
        self.item_weights
            .iter()
            .map(|w| (w.item_id, w.weight))
            .collect()
    }
}
