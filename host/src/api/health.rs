//! `GET /health`: is the service able to do its work?

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
    pub version: &'static str,
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
            version: env!("CARGO_PKG_VERSION"),
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
