//! `GET /health`: is the service able to do its work?

use std::time::Duration;

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
    let Some(client) = &state.redis else {
        return "not configured";
    };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => "connected",
        _ => "disconnected",
    }
}
