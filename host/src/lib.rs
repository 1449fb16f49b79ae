//! recengine: a recommendation service whose business rules run as sandboxed
//! WebAssembly components.
//!
//! # Layout
//! - [`config`]: typed settings from the environment, validated at start.
//! - [`error`]: the one error type every handler returns; `{"detail"}` JSON.
//! - [`store`]: sqlx repositories over SQLite (default) or PostgreSQL.
//! - [`auth`]: passwords (argon2id), JWTs, sessions, the `CurrentUser`
//!   extractor and role checks.
//! - [`ratelimit`]: GCRA limits, in-process or shared through Redis.
//! - [`redis_pool`]: the lazily connected, reconnecting Redis handle.
//! - [`rules`]: the Wasm rule runtime: sandbox, pipeline, registry.
//! - [`recommend`]: candidate generation and the recommendation service.
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
pub mod ratelimit;
pub mod recommend;
pub mod redis_pool;
pub mod rules;
pub mod store;
pub mod telemetry;

use std::sync::Arc;

use auth::tokens::TokenKeys;
use config::Settings;
use ratelimit::RateLimiter;
use redis_pool::RedisPool;
use store::Db;

/// What every handler can reach. Cheap to clone (all fields are handles).
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Option<Arc<RedisPool>>,
    pub tokens: Arc<TokenKeys>,
    pub limiter: Arc<RateLimiter>,
    pub rules: Arc<rules::registry::RuleRegistry>,
}

impl AppState {
    /// Connects to the database (applying migrations) and prepares the Redis
    /// client when one is configured. Redis being down is not fatal: the
    /// service degrades to in-process state and says so in `/health`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database_url, settings.database_max_connections).await?;
        db.migrate().await?;
        let redis = match &settings.redis_url {
            Some(url) => Some(Arc::new(RedisPool::new(url, &settings.redis_key_prefix)?)),
            None => None,
        };
        auth::bootstrap::ensure_initial_admin(&db, &settings).await?;
        let engine = rules::engine::RuleEngine::new(rules::engine::Limits {
            deadline: std::time::Duration::from_millis(settings.rule_deadline_ms),
            memory_bytes: settings.rule_memory_mb << 20,
            ..Default::default()
        })?;
        let registry = rules::registry::RuleRegistry::with_builtins(engine)?;
        registry.load_dir(&settings.rules_dir);
        rules::admin::apply_persisted(&registry, &db).await?;
        Ok(Self {
            rules: Arc::new(registry),
            tokens: Arc::new(TokenKeys::new(&settings)),
            limiter: Arc::new(RateLimiter::new(&settings, redis.clone())),
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
