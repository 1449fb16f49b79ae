//! Item features: the item's attributes plus its interaction statistics.

use std::{
    collections::{BTreeMap, HashMap},
    sync::atomic::{AtomicU64, Ordering},
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::AppResult,
    store::{Db, feature_rows, items, millis_to_datetime, now_millis},
};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemFeatures {
    pub item_id: i64,
    pub total_interactions: i64,
    pub interaction_types: BTreeMap<String, i64>,
    pub avg_rating: Option<f64>,
    pub popularity_score: f64,
    pub view_count: i64,
    pub click_count: i64,
    pub purchase_count: i64,
    pub age_days: f64,
    /// The item itself (title, category, tags, features, ...).
    pub item: items::Item,
    pub computed_at: DateTime<Utc>,
    /// What the rules derived from this item (its encoded row).
    #[serde(skip)]
    pub derived: Derived,
}

/// A tag a consumer keeps beside a cached value for as long as the value
/// is cached (the rules' row number of an item in their encoded table):
/// zero when the value is new or cloned, never serialised, opaque, so the
/// feature store knows nothing of its consumers. One atomic word, read on
/// every request for every candidate.
#[derive(Default)]
pub struct Derived(AtomicU64);

impl Derived {
    /// The tag (0: none).
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Replaces the tag.
    pub fn store(&self, tag: u64) {
        self.0.store(tag, Ordering::Relaxed);
    }
}

impl Clone for Derived {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Derived({:#x})", self.load())
    }
}

/// One query for the items, one for their maintained interaction counts.
pub async fn compute(db: &Db, ids: &[i64]) -> AppResult<Vec<ItemFeatures>> {
    let found = items::get_many(db, ids).await?;
    let found_ids: Vec<i64> = found.iter().map(|item| item.id).collect();
    // Per item: (type, interactions, rated ones, sum of ratings).
    type TypeStats = (String, i64, i64, f64);
    let mut by_item: HashMap<i64, Vec<TypeStats>> = HashMap::new();
    for row in feature_rows::item_type_stats(db, &found_ids).await? {
        by_item.entry(row.item_id).or_default().push((
            row.interaction_type,
            row.interactions,
            row.rated,
            row.rating_sum,
        ));
    }
    let now = now_millis();
    Ok(found
        .into_iter()
        .map(|item| {
            let rows = by_item.remove(&item.id).unwrap_or_default();
            let types: BTreeMap<String, i64> =
                rows.iter().map(|(k, n, _, _)| (k.clone(), *n)).collect();
            let rated: i64 = rows.iter().map(|r| r.2).sum();
            let rating_sum: f64 = rows.iter().map(|r| r.3).sum();
            let count = |k: &str| types.get(k).copied().unwrap_or(0);
            ItemFeatures {
                item_id: item.id,
                total_interactions: types.values().sum(),
                avg_rating: (rated > 0).then(|| rating_sum / rated as f64),
                popularity_score: item.popularity_score,
                view_count: count("view"),
                click_count: count("click"),
                purchase_count: count("purchase"),
                interaction_types: types,
                age_days: ((now - item.created_at.timestamp_millis()).max(0) as f64 / 86_400_000.0
                    * 100.0)
                    .round()
                    / 100.0,
                item,
                computed_at: millis_to_datetime(now),
                derived: Derived::default(),
            }
        })
        .collect())
}
