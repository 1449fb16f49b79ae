//! `/api/v1/models`: the trained model snapshot: what is serving, and a
//! retrain on demand (ops or admin; the scheduled retrain calls the same).

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, auth::extract::Ops, error::AppResult, recommend::snapshot::TrainingReport};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(retrain))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelStatus {
    pub current: TrainingReport,
    /// This replica's name (`current.trained_by` names the one that trained).
    pub replica: String,
    /// The collaborative model behind `collaborative` and the hybrid.
    pub collaborative_model: String,
    pub hybrid_method: String,
    pub hybrid_alpha: f64,
    /// Recommendation cache hits and misses since start.
    pub cache_hits: u64,
    pub cache_misses: u64,
}

#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, body = ModelStatus)))]
pub async fn status(State(state): State<AppState>) -> Json<ModelStatus> {
    let snapshot = state.recommender.snapshot();
    Json(ModelStatus {
        current: snapshot.report.clone(),
        replica: state.recommender.replica().to_string(),
        collaborative_model: crate::recommend::algorithms::name(snapshot.models.collaborative())
            .to_string(),
        hybrid_method: state.settings.hybrid_method.name().to_string(),
        hybrid_alpha: state.settings.hybrid_alpha,
        cache_hits: state.rec_cache.stats.hits(),
        cache_misses: state.rec_cache.stats.misses(),
    })
}

/// Retrains every model from the database and swaps them in; answers when
/// the new models serve.
#[utoipa::path(post, path = "/api/v1/models/retrain", tag = "models",
    security(("bearer" = [])),
    responses((status = 200, body = TrainingReport), (status = 401), (status = 403)))]
pub async fn retrain(State(state): State<AppState>, _: Ops) -> AppResult<Json<TrainingReport>> {
    Ok(Json(
        state
            .retrain()
            .await
            .map_err(crate::error::AppError::Internal)?,
    ))
}
