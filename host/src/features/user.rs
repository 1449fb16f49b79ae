//! User features, computed from the user's row and their interactions.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::placeholders;
use crate::{
    error::AppResult,
    recommend::confidence::Confidence,
    store::{Db, millis_to_datetime, now_millis},
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
    let list = placeholders(1, ids.len());
    let users_sql = format!("SELECT id, preferences, created_at FROM users WHERE id IN ({list})");
    let mut users = sqlx::query_as::<_, (i64, String, i64)>(&users_sql);
    for id in &ids {
        users = users.bind(*id);
    }
    let users = users.fetch_all(&db.pool).await?;
    let rows_sql = format!(
        "SELECT x.user_id, x.item_id, x.interaction_type, x.rating, x.weight, x.created_at, i.category \
         FROM interactions x LEFT JOIN items i ON i.id = x.item_id WHERE x.user_id IN ({list})"
    );
    let mut rows =
        sqlx::query_as::<_, (i64, i64, String, Option<f64>, f64, i64, Option<String>)>(&rows_sql);
    for id in &ids {
        rows = rows.bind(*id);
    }
    let rows = rows.fetch_all(&db.pool).await?;
    let mut by_user: HashMap<i64, Vec<_>> = HashMap::new();
    for r in rows {
        by_user.entry(r.0).or_default().push(r);
    }
    let now = now_millis();
    Ok(users
        .into_iter()
        .map(|(id, preferences, created_at)| {
            let rows = by_user.remove(&id).unwrap_or_default();
            let mut types: BTreeMap<String, i64> = BTreeMap::new();
            let mut categories: BTreeMap<String, i64> = BTreeMap::new();
            let mut weights: BTreeMap<i64, f32> = BTreeMap::new();
            let mut purchased = Vec::new();
            let (mut rating_sum, mut ratings) = (0.0, 0);
            let mut last: Option<i64> = None;
            let mut recent = 0;
            for (_, item, kind, rating, weight, at, category) in &rows {
                *types.entry(kind.clone()).or_default() += 1;
                if let Some(c) = category {
                    *categories.entry(c.clone()).or_default() += 1;
                }
                *weights.entry(*item).or_default() += confidence.of(kind, *rating, *weight);
                if kind == "purchase" {
                    purchased.push(*item);
                }
                if let Some(r) = rating {
                    rating_sum += r;
                    ratings += 1;
                }
                last = Some(last.map_or(*at, |l| l.max(*at)));
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
        })
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
