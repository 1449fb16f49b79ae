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

/// Users whose lists are computed, then written, together: the job's memory
/// is this many lists, however many users there are.
const BATCH_CHUNK_USERS: usize = 500;
/// Failed users named in the run's result (the count is always whole).
const BATCH_FAILURES_SHOWN: usize = 20;

/// The top N (default 20) of every active user, with the business rules,
/// stored in `batch_recommendations`. Users go in chunks of
/// [`BATCH_CHUNK_USERS`], each chunk's lists computed
/// `BATCH_RECOMMENDATIONS_PARALLEL` at a time (default one: a core is left
/// to live traffic) and written in one short transaction, so
/// memory stays bounded and writers are never locked out for the whole run;
/// a reader sees each user's old list or new one, and lists of users who are
/// no longer active go once every chunk is in.
async fn generate_batch(state: &AppState, run_id: i64) -> anyhow::Result<Value> {
    use futures_util::StreamExt;
    let started = std::time::Instant::now();
    let users = store::users::active_ids(&state.db).await?;
    let top_n = state.settings.jobs.batch_top_n;
    let parallel = state.settings.jobs.batch_parallel;
    let generated_at = now_millis();
    let algorithm = state.recommendations.algorithm("hybrid", None)?;
    let (mut written, mut items, mut failed_count) = (0usize, 0usize, 0usize);
    let mut failed = Vec::new();
    for chunk in users.chunks(BATCH_CHUNK_USERS) {
        let lists: Vec<_> =
            futures_util::stream::iter(chunk.iter().copied().map(|user_id| async move {
                let query = RecommendationQuery {
                    user_id,
                    top_n,
                    algorithm,
                    algorithm_name: "hybrid".into(),
                    exclude_interacted: true,
                    context: Default::default(),
                    exclude_ids: Vec::new(),
                    explain: false,
                    rule_kinds: None,
                };
                state
                    .recommendations
                    .recommend(query)
                    .await
                    .map_err(|e| (user_id, e))
            }))
            .buffered(parallel)
            .collect()
            .await;
        let mut rows = Vec::with_capacity(lists.len());
        for list in &lists {
            match list {
                Ok(list) => {
                    items += list.recommendations.len();
                    rows.push(BatchRow {
                        user_id: list.user_id,
                        items: serde_json::to_string(&list.recommendations)?,
                        algorithm: &list.algorithm,
                        model_version: list.model_version as i64,
                    });
                }
                // A user deleted since the listing; reported, not fatal.
                Err((user_id, e)) => {
                    failed_count += 1;
                    if failed.len() < BATCH_FAILURES_SHOWN {
                        failed.push(json!({ "user_id": user_id, "error": e.to_string() }));
                    }
                }
            }
        }
        batch_recommendations::upsert(&state.db, &rows, run_id, generated_at).await?;
        written += rows.len();
    }
    if !users.is_empty() && written == 0 {
        anyhow::bail!("no user's recommendations could be generated: {failed:?}");
    }
    batch_recommendations::delete_other_runs(&state.db, run_id).await?;
    Ok(json!({
        "users": written,
        "recommendations": items,
        "top_n": top_n,
        "failed_count": failed_count,
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
    let interactions = store::interactions::total(&state.db)
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
