//! Trending: the items with the most interactions in a recent window. An
//! indexed range read of the window (never the whole table), cached for a
//! few seconds so a burst of requests costs one query.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    cache::Cache,
    error::AppResult,
    features::FeatureStore,
    store::{Db, interactions, now_millis},
};

/// How long one window's answer is reused.
pub const TRENDING_CACHE_TTL: Duration = Duration::from_secs(10);
/// The longest window one may ask for (30 days).
pub const MAX_WINDOW_SECONDS: i64 = 30 * 86_400;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrendingItem {
    pub item_id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    /// Interactions inside the window.
    pub interaction_count: i64,
    /// Distinct users inside the window.
    pub unique_users: i64,
    /// 0-1: interaction count relative to the top item's.
    pub trending_score: f64,
    pub rank: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrendingResponse {
    pub trending_items: Vec<TrendingItem>,
    /// The window served: the one asked for, rounded up to whole minutes
    /// (up to an hour), hours (up to a day) or days.
    pub time_window_seconds: i64,
    pub count: usize,
}

/// The window actually served: the one asked for, rounded up to whole
/// minutes up to an hour, whole hours up to a day, whole days beyond, so
/// that arbitrary values cannot each mint a cache entry (at most 114
/// windows exist) and a client still gets at least what it asked for.
pub fn bucket_window(seconds: i64) -> i64 {
    let step = if seconds <= 3600 {
        60
    } else if seconds <= 86_400 {
        3600
    } else {
        86_400
    };
    ((seconds.max(1) + step - 1) / step * step).min(MAX_WINDOW_SECONDS)
}

pub async fn trending(
    db: &Db,
    features: &FeatureStore,
    cache: &Cache<TrendingResponse>,
    limit: usize,
    window_seconds: i64,
) -> AppResult<TrendingResponse> {
    let window_seconds = bucket_window(window_seconds);
    let (group, field) = (window_seconds.to_string(), limit.to_string());
    if let Some(hit) = cache.get(&group, &field).await {
        return Ok(TrendingResponse::clone(&hit));
    }
    let since = now_millis() - window_seconds * 1000;
    // Over-fetch: some of the top items may have been deleted.
    let rows = interactions::most_since(db, since, limit + 10).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.item_id).collect();
    let items = features.items_batch(&ids).await?;
    let top = rows.first().map_or(1, |r| r.interactions).max(1) as f64;
    let trending_items: Vec<TrendingItem> = rows
        .into_iter()
        .filter_map(|r| {
            items
                .get(&r.item_id)
                .map(|f| (&f.item, r.interactions, r.users))
        })
        .take(limit)
        .enumerate()
        .map(|(rank, (item, n, users))| TrendingItem {
            item_id: item.id,
            title: item.title.clone(),
            description: item.description.clone(),
            category: item.category.clone(),
            interaction_count: n,
            unique_users: users,
            trending_score: n as f64 / top,
            rank: rank + 1,
        })
        .collect();
    let response = TrendingResponse {
        count: trending_items.len(),
        trending_items,
        time_window_seconds: window_seconds,
    };
    cache
        .put(&group, &field, std::sync::Arc::new(response.clone()))
        .await;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_round_up_to_few_buckets() {
        assert_eq!(bucket_window(60), 60);
        assert_eq!(bucket_window(61), 120);
        assert_eq!(bucket_window(3600), 3600);
        assert_eq!(bucket_window(3601), 7200);
        assert_eq!(bucket_window(86_401), 2 * 86_400);
        assert_eq!(bucket_window(MAX_WINDOW_SECONDS), MAX_WINDOW_SECONDS);
        let distinct: std::collections::HashSet<i64> = (60..=MAX_WINDOW_SECONDS)
            .step_by(7)
            .map(bucket_window)
            .collect();
        assert!(distinct.len() <= 114, "{}", distinct.len());
    }
}
