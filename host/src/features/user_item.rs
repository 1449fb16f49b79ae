//! User-item features: how one user relates to one item.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ItemFeatures, UserFeatures};
use crate::{
    error::AppResult,
    recommend::snapshot::Snapshot,
    store::{Db, millis_to_datetime},
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
/// the items' (cached) features and the model snapshot.
pub async fn compute(
    db: &Db,
    snapshot: &Snapshot,
    user: &UserFeatures,
    items: &[&ItemFeatures],
) -> AppResult<Vec<UserItemFeatures>> {
    let ids: Vec<i64> = items.iter().map(|i| i.item_id).collect();
    let mut counts: BTreeMap<i64, (BTreeMap<String, i64>, i64)> = BTreeMap::new();
    if !ids.is_empty() {
        let list = super::placeholders(2, ids.len());
        let sql = format!(
            "SELECT item_id, interaction_type, COUNT(*), MAX(created_at) FROM interactions \
             WHERE user_id = $1 AND item_id IN ({list}) GROUP BY item_id, interaction_type"
        );
        let mut q = sqlx::query_as::<_, (i64, String, i64, i64)>(&sql).bind(user.user_id);
        for id in &ids {
            q = q.bind(*id);
        }
        for (item, kind, n, last) in q.fetch_all(&db.pool).await? {
            let entry = counts.entry(item).or_default();
            entry.0.insert(kind, n);
            entry.1 = entry.1.max(last);
        }
    }
    let profile = snapshot.profile(&user.profile());
    let mut similarity = vec![0f32; snapshot.models.n_items];
    snapshot.models.content.score(&profile, &mut similarity);
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
                content_similarity: snapshot
                    .item_index
                    .get(&item.item_id)
                    .map_or(0.0, |&i| f64::from(similarity[i as usize])),
            }
        })
        .collect())
}
