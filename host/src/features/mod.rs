//! The feature store: what the service knows about users, items and
//! user-item pairs, computed from the database on a miss and cached
//! (`FEATURE_CACHE_TTL`; in process, or in Redis shared by replicas).
//! Batch reads cost one cache round trip and at most one query per table.
//!
//! The recommender reads users' profiles (the items they touched, with
//! confidences) from here, so an interaction counts in the very next
//! recommendation, before any retrain; the rule pipeline reads the user's
//! preferences and purchases and every candidate's attributes from here.

pub mod confidence;
pub mod item;
pub mod user;
pub mod user_item;

use std::{collections::HashMap, sync::Arc};

pub use item::{Derived, ItemFeatures};
pub use user::UserFeatures;
pub use user_item::UserItemFeatures;

use crate::{cache::Cache, config::Settings, error::AppResult, store::Db};
pub use confidence::Confidence;

/// Most ids one batch request may ask for.
pub const MAX_BATCH: usize = 1000;

pub struct FeatureStore {
    db: Db,
    confidence: Confidence,
    pub users: Cache<UserFeatures>,
    pub items: Cache<ItemFeatures>,
}

impl FeatureStore {
    pub fn new(db: Db, settings: &Settings, shared: Option<&crate::cache::Shared>) -> Self {
        Self {
            users: Cache::new(
                "user_features",
                settings.feature_cache_ttl,
                shared,
                &settings.cache,
            ),
            items: Cache::new(
                "item_features",
                settings.feature_cache_ttl,
                shared,
                &settings.cache,
            ),
            confidence: Confidence::from_settings(settings),
            db,
        }
    }

    pub async fn user(&self, id: i64) -> AppResult<Option<Arc<UserFeatures>>> {
        Ok(self.users_batch(&[id]).await?.remove(&id))
    }

    pub async fn item(&self, id: i64) -> AppResult<Option<Arc<ItemFeatures>>> {
        Ok(self.items_batch(&[id]).await?.remove(&id))
    }

    /// Features of every id that exists; unknown ids are simply absent.
    /// Shared with the cache: a hit copies nothing.
    pub async fn users_batch(&self, ids: &[i64]) -> AppResult<HashMap<i64, Arc<UserFeatures>>> {
        cached_batch(
            &self.users,
            ids,
            |f| f.user_id,
            |missing| async move { user::compute(&self.db, &self.confidence, &missing).await },
        )
        .await
    }

    pub async fn items_batch(&self, ids: &[i64]) -> AppResult<HashMap<i64, Arc<ItemFeatures>>> {
        cached_batch(
            &self.items,
            ids,
            |f| f.item_id,
            |missing| async move { item::compute(&self.db, &missing).await },
        )
        .await
    }

    pub async fn invalidate_user(&self, id: i64) {
        self.users.invalidate_group(&id.to_string()).await;
    }

    pub async fn invalidate_item(&self, id: i64) {
        self.items.invalidate_group(&id.to_string()).await;
    }

    pub async fn invalidate_all(&self) {
        self.users.invalidate_all().await;
        self.items.invalidate_all().await;
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// One cache round trip for all ids, one `compute` for the misses (whose
/// results are cached).
async fn cached_batch<T, Fut>(
    cache: &Cache<T>,
    ids: &[i64],
    id_of: fn(&T) -> i64,
    compute: impl FnOnce(Vec<i64>) -> Fut,
) -> AppResult<HashMap<i64, Arc<T>>>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
    Fut: Future<Output = AppResult<Vec<T>>>,
{
    let keys: Vec<String> = ids.iter().map(i64::to_string).collect();
    let lookups: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "")).collect();
    let cached = cache.get_many(&lookups).await;
    let mut out: HashMap<i64, Arc<T>> = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for (id, hit) in ids.iter().zip(cached) {
        match hit {
            Some(f) => {
                out.insert(*id, f);
            }
            None => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        let computed: Vec<Arc<T>> = compute(missing).await?.into_iter().map(Arc::new).collect();
        cache
            .put_many(
                computed
                    .iter()
                    .map(|f| (id_of(f).to_string(), String::new(), f.clone()))
                    .collect(),
            )
            .await;
        out.extend(computed.into_iter().map(|f| (id_of(&f), f)));
    }
    Ok(out)
}
