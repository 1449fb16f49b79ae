//! User-item features: how one user relates to one item.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ItemFeatures, UserFeatures};
use crate::{
    error::AppResult,
    store::{Db, feature_rows, millis_to_datetime},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserItemFeatures {
    pub user_id: i64,
    pub item_id: i64,
    pub has_interacted: bool,
    pub interaction_count: i64,
    pub interaction_types: BTreeMap<String, i64>,
    pub last_interaction_at: Option<DateTime<Utc>>,
    /// Share of the user's interactions that fall in the item's category.
    pub category_affinity: f64,
    /// Cosine similarity of the item's TF-IDF vector to the user's content
    /// profile (the current model; 0 for items it has not seen yet).
    pub content_similarity: f64,
}

/// The pairs' own counts come from one query; the rest from the user's and
/// the items' (cached) features. `content_similarity` scores an item id
/// against the user's content profile (the recommender's TF-IDF model: the
/// feature store holds no model of its own).
pub async fn compute(
    db: &Db,
    user: &UserFeatures,
    items: &[&ItemFeatures],
    content_similarity: impl Fn(i64) -> f64,
) -> AppResult<Vec<UserItemFeatures>> {
    let ids: Vec<i64> = items.iter().map(|i| i.item_id).collect();
    let mut counts: BTreeMap<i64, (BTreeMap<String, i64>, i64)> = BTreeMap::new();
    for row in feature_rows::pair_counts(db, user.user_id, &ids).await? {
        let entry = counts.entry(row.item_id).or_default();
        entry.0.insert(row.interaction_type, row.interactions);
        entry.1 = entry.1.max(row.last_at);
    }
    let total: i64 = user.category_counts.values().sum();
    Ok(items
        .iter()
        .map(|item| {
            let (types, last) = counts.remove(&item.item_id).unwrap_or_default();
            let in_category = user
                .category_counts
                .get(&item.item.category)
                .copied()
                .unwrap_or(0);
            let n: i64 = types.values().sum();
            UserItemFeatures {
                user_id: user.user_id,
                item_id: item.item_id,
                has_interacted: n > 0,
                interaction_count: n,
                interaction_types: types,
                last_interaction_at: (n > 0).then(|| millis_to_datetime(last)),
                category_affinity: if total > 0 {
                    in_category as f64 / total as f64
                } else {
                    0.0
                },
                content_similarity: content_similarity(item.item_id),
            }
        })
        .collect())
}
