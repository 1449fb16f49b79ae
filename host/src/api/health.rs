//! `GET /health` (liveness: is the service able to do its work?) and
//! `GET /ready` (readiness: are its first models trained?).

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` (Redis configured but unreachable: the service
    /// falls back to in-process limits and caches) or `unhealthy` (no
    /// database).
    pub status: &'static str,
    /// `connected` or `disconnected`.
    pub database: &'static str,
    /// `connected`, `not configured` or `disconnected`.
    pub redis: &'static str,
    /// `ready`, or `starting` while the first models train (recommendations
    /// then come from the stored popularity).
    pub models: &'static str,
    pub version: &'static str,
}

/// What `/ready` reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`; `starting` while the first models train; `unavailable`
    /// without a database.
    pub status: &'static str,
    /// The version of the models being served; 0 before the first.
    pub model_version: u64,
}

/// 200 while the service can serve (healthy or degraded), 503 when it cannot,
/// so a load balancer takes an unhealthy replica out of rotation.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (database_ok, redis) = tokio::join!(state.db.ping(), redis_state(&state));
    let status = match (database_ok, redis) {
        (false, _) => "unhealthy",
        (true, "disconnected") => "degraded",
        _ => "healthy",
    };
    let code = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Health {
            status,
            database: if database_ok {
                "connected"
            } else {
                "disconnected"
            },
            redis,
            models: if state.is_ready() {
                "ready"
            } else {
                "starting"
            },
            version: env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// The readiness probe, distinct from liveness (`/health`): 200 once the
/// first models are trained and the database answers, 503 before (status
/// `starting`: the process is alive, keep it, but send it no traffic yet if
/// other replicas are ready) or without a database.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let model_version = state.recommender.snapshot().version;
    let status = if !state.db.ping().await {
        "unavailable"
    } else if model_version == 0 {
        "starting"
    } else {
        "ready"
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Readiness {
            status,
            model_version,
        }),
    )
}

async fn redis_state(state: &AppState) -> &'static str {
    match &state.redis {
        None => "not configured",
        Some(redis) if redis.ping().await => "connected",
        Some(_) => {
            tracing::warn!("health: Redis unreachable, running on in-process limits and caches");
            "disconnected"
        }
    }
}
