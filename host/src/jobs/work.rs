//! What each job does. Every body calls the same domain code the API does
//! (`AppState::retrain`, the recommendation service, the caches), and
//! returns a JSON summary that is stored as the run's result.

use serde_json::{Value, json};

use super::{JobName, runs};
use crate::{
    AppState,
    recommend::service::RecommendationQuery,
    store::{self, Db, now_millis},
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
    let job_runs = runs::delete_finished_before(&state.db, now_millis() - retention_ms).await?;
    Ok(json!({
        "caches": caches,
        "refresh_tokens_deleted": refresh_tokens,
        "job_runs_deleted": job_runs,
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
    let rescored = rescore_popularity(&state.db).await?;
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

async fn rescore_popularity(db: &Db) -> anyhow::Result<(u64, i64)> {
    let (max,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(c) FROM (SELECT COUNT(DISTINCT user_id) AS c FROM interactions GROUP BY item_id) per_item",
    )
    .fetch_one(&db.pool)
    .await?;
    let Some(max) = max.filter(|&m| m > 0) else {
        return Ok((0, 0));
    };
    let done = sqlx::query(
        "UPDATE items SET popularity_score = \
             (SELECT CAST(COUNT(DISTINCT i.user_id) AS DOUBLE PRECISION) FROM interactions i \
              WHERE i.item_id = items.id) / $1 \
         WHERE EXISTS (SELECT 1 FROM interactions i WHERE i.item_id = items.id)",
    )
    .bind(max as f64)
    .execute(&db.pool)
    .await?;
    Ok((done.rows_affected(), max))
}

/// The top N (default 20) of every active user, with the business rules,
/// stored in `batch_recommendations` in one transaction: readers see the
/// old set or the new one, never half.
async fn generate_batch(state: &AppState, run_id: i64) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let users: Vec<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE is_active = 1 ORDER BY id")
        .fetch_all(&state.db.pool)
        .await?;
    let top_n = state.settings.jobs.batch_top_n;
    let mut lists = Vec::with_capacity(users.len());
    let mut failed = Vec::new();
    for (user_id,) in &users {
        let query = RecommendationQuery {
            user_id: *user_id,
            top_n,
            algorithm: state.recommendations.algorithm("hybrid", None)?,
            algorithm_name: "hybrid".into(),
            exclude_interacted: true,
            context: Default::default(),
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
    let now = now_millis();
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("DELETE FROM batch_recommendations")
        .execute(&mut *tx)
        .await?;
    let mut items = 0usize;
    for list in &lists {
        items += list.recommendations.len();
        sqlx::query(
            "INSERT INTO batch_recommendations \
                 (user_id, items, algorithm, model_version, run_id, generated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(list.user_id)
        .bind(serde_json::to_string(&list.recommendations)?)
        .bind(&list.algorithm)
        .bind(list.model_version as i64)
        .bind(run_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
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
    let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE is_active = 1")
        .fetch_one(&state.db.pool)
        .await?;
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
