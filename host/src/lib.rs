//! recengine: a recommendation service whose business rules run as sandboxed
//! WebAssembly components.
//!
//! # Layout
//! - [`config`]: typed settings from the environment, validated at start.
//! - [`error`]: the one error type every handler returns; `{"detail"}` JSON.
//! - [`store`]: sqlx repositories over SQLite (default) or PostgreSQL.
//! - [`auth`]: passwords (argon2id).
//! - [`api`]: the axum routers, one per resource, and the OpenAPI document.
//! - [`telemetry`]: JSON logs and the request-id / access-log middleware.
//! - [`data`]: the MovieLens importer and the demo catalogue.
//!
//! `main.rs` only parses the command line; everything else is built here so
//! tests drive the same router a user does.

pub mod api;
pub mod auth;
pub mod config;
pub mod data;
pub mod error;
pub mod store;
pub mod telemetry;

use std::sync::Arc;

use config::Settings;
use store::Db;

/// What every handler can reach. Cheap to clone (all fields are handles).
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Option<redis::Client>,
}

impl AppState {
    /// Connects to the database (applying migrations) and prepares the Redis
    /// client when one is configured. Redis being down is not fatal: the
    /// service degrades to in-process state and says so in `/health`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database_url, settings.database_max_connections).await?;
        db.migrate().await?;
        let redis = match &settings.redis_url {
            Some(url) => Some(
                redis::Client::open(url.as_str())
                    .map_err(|e| anyhow::anyhow!("invalid REDIS_URL: {e}"))?,
            ),
            None => None,
        };
        Ok(Self {
            settings: Arc::new(settings),
            db,
            redis,
        })
    }
}

/// The application: router plus middleware, ready to serve or to test.
pub fn app(state: AppState) -> axum::Router {
    api::router(state)
}
