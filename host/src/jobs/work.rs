//! What each job does. Every body calls the same domain code the API does
//! (`AppState::retrain`, the recommendation service, the caches), and
//! returns a JSON summary that is stored as the run's result.

use serde_json::{Value, json};

use super::JobName;
use crate::{
    AppState,
    recommend::service::RecommendationQuery,
    store::{
        self,
        batch_recommendations::{self, BatchRow},
        job_runs, now_millis,
    },
    telemetry::metrics::METRICS,
};

pub async fn run(state: &AppState, job: JobName, run_id: i64) -> anyhow::Result<Value> {
    match job {
        JobName::CleanupOldCache => cleanup_old_cache(state).await,
        JobName::RetrainCollaborativeModel => retrain(state).await,
        JobName::UpdateItemFeatures => update_item_features(state).await,
        JobName::GenerateBatchRecommendations => generate_batch(state, run_id).await,
        JobName::UpdateMetrics => update_metrics(state).await,
    }
}

/// Expired entries of this process's caches (Redis expires its own),
/// refresh tokens a day past expiry, and finished runs past the retention.
async fn cleanup_old_cache(state: &AppState) -> anyhow::Result<Value> {
    let caches = purge_local_caches(state);
    let refresh_tokens = store::refresh_tokens::delete_expired(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("deleting expired refresh tokens: {e}"))?;
    let retention_ms = i64::from(state.settings.jobs.run_retention_days) * 86_400_000;
    let runs_deleted =
        job_runs::delete_finished_before(&state.db, now_millis() - retention_ms).await?;
    Ok(json!({
        "caches": caches,
        "refresh_tokens_deleted": refresh_tokens,
        "job_runs_deleted": runs_deleted,
    }))
}

/// Per cache: entries purged and entries left (in this process).
pub fn purge_local_caches(state: &AppState) -> Value {
    let mut out = serde_json::Map::new();
    for (name, purged, left) in [
        (
            "recommendations",
            state.rec_cache.purge_expired(),
            state.rec_cache.local_len(),
        ),
        (
            "trending",
            state.trending_cache.purge_expired(),
            state.trending_cache.local_len(),
        ),
        (
            "user_features",
            state.features.users.purge_expired(),
            state.features.users.local_len(),
        ),
        (
            "item_features",
            state.features.items.purge_expired(),
            state.features.items.local_len(),
        ),
    ] {
        out.insert(name.into(), json!({ "purged": purged, "remaining": left }));
    }
    Value::Object(out)
}

async fn retrain(state: &AppState) -> anyhow::Result<Value> {
    let report = state.retrain().await?;
    Ok(serde_json::to_value(report)?)
}

/// Item popularity from the interactions (distinct users, scaled so the
/// most popular item is 1; items nobody interacted with keep the score the
/// catalogue gave them), then TF-IDF over the current catalogue. The
/// models share one item index, so the new vocabulary and the new items
/// mean a new snapshot: the retrain is that rebuild (under a second on
/// MovieLens 100K).
async fn update_item_features(state: &AppState) -> anyhow::Result<Value> {
    let rescored = store::items::rescore_popularity(&state.db).await?;
    let report = state.retrain().await?;
    state.features.items.invalidate_all().await;
    state.trending_cache.invalidate_all().await;
    Ok(json!({
        "items_rescored": rescored.0,
        "max_users_per_item": rescored.1,
        "model_version": report.version,
        "items_in_model": report.items,
        "train_ms": report.train_ms,
    }))
}

/// The top N (default 20) of every active user, with the business rules,
/// stored in `batch_recommendations` in one transaction: readers see the
/// old set or the new one, never half.
async fn generate_batch(state: &AppState, run_id: i64) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let users = store::users::active_ids(&state.db).await?;
    let top_n = state.settings.jobs.batch_top_n;
    let mut lists = Vec::with_capacity(users.len());
    let mut failed = Vec::new();
    for &user_id in &users {
        let query = RecommendationQuery {
            user_id,
            top_n,
            algorithm: state.recommendations.algorithm("hybrid", None)?,
            algorithm_name: "hybrid".into(),
            exclude_interacted: true,
            context: Default::default(),
            exclude_ids: Vec::new(),
            explain: false,
            rule_kinds: None,
        };
        match state.recommendations.recommend(query).await {
            Ok(list) => lists.push(list),
            // A user deleted since the listing; reported, not fatal.
            Err(e) => failed.push(json!({ "user_id": user_id, "error": e.to_string() })),
        }
    }
    if !users.is_empty() && lists.is_empty() {
        anyhow::bail!("no user's recommendations could be generated: {failed:?}");
    }
    let items = lists.iter().map(|l| l.recommendations.len()).sum::<usize>();
    let rows = lists
        .iter()
        .map(|list| {
            Ok(BatchRow {
                user_id: list.user_id,
                items: serde_json::to_string(&list.recommendations)?,
                algorithm: &list.algorithm,
                model_version: list.model_version as i64,
            })
        })
        .collect::<serde_json::Result<Vec<_>>>()?;
    batch_recommendations::replace_all(&state.db, &rows, run_id, now_millis()).await?;
    Ok(json!({
        "users": lists.len(),
        "recommendations": items,
        "top_n": top_n,
        "failed_users": failed,
        "model_version": state.recommender.snapshot().version,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// The gauges a dashboard shows, from the database (every replica sets its
/// own: gauges are per process).
pub async fn update_metrics(state: &AppState) -> anyhow::Result<Value> {
    let users = store::users::count_active(&state.db).await?;
    let items = store::items::count(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let interactions = store::interactions::count(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let m = &*METRICS;
    m.active_users.set(users);
    m.active_items.set(items);
    m.total_interactions.set(interactions);
    Ok(json!({
        "active_users": users,
        "active_items": items,
        "total_interactions": interactions,
    }))
}
