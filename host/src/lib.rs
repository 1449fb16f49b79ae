//! recengine: a recommendation service whose business rules run as sandboxed
//! WebAssembly components.
//!
//! # Layout
//! Bottom-up: each module uses only those above it in this list (checked
//! by `tests/architecture.rs`, which also keeps SQL inside [`store`]).
//! - [`config`]: typed settings from the environment, validated at start;
//!   every concern's settings type lives here.
//! - [`error`]: the one error type every handler returns; `{"detail"}` JSON.
//! - [`telemetry`]: JSON logs, metrics, the request-id / access-log
//!   middleware.
//! - [`store`]: every query, over SQLite (default) or PostgreSQL; the
//!   fail-fast pool; PostgreSQL notifications.
//! - [`redis_pool`]: the Redis handle behind a circuit breaker.
//! - [`cache`]: bounded TTL caches, in process, with Redis as a second level.
//! - [`auth`]: passwords (argon2id), JWTs, sessions, the `CurrentUser`,
//!   `Ops` and `Admin` extractors.
//! - [`ratelimit`]: GCRA limits, in-process or shared through Redis.
//! - [`features`]: the feature store (users, items, user-item pairs) and the
//!   confidences profiles are built with.
//! - [`rules`]: the Wasm rule runtime: sandbox, pipeline, registry, bundles,
//!   and the runner requests go through.
//! - [`data`]: the MovieLens importer and the demo catalogue.
//! - [`recommend`]: the model snapshot, the recommendation service, similar
//!   items, explanations, trending, the offline evaluation.
//! - [`jobs`]: scheduled jobs, their runs, retries, fleet rules.
//! - [`server`]: the serving loop: header-read and idle timeouts, a
//!   connection cap, graceful shutdown.
//! - [`api`]: the axum routers, one per resource, and the OpenAPI document
//!   generated from them.
//!
//! This file composes them ([`AppState`]); `main.rs` only parses the
//! command line, so tests drive the same router a user does.

pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod data;
pub mod error;
pub mod features;
pub mod jobs;
pub mod ratelimit;
pub mod recommend;
pub mod redis_pool;
pub mod rules;
pub mod server;
pub mod store;
pub mod telemetry;

use std::sync::Arc;

use auth::tokens::TokenKeys;
use config::Settings;
use ratelimit::RateLimiter;
use redis_pool::RedisPool;
use store::Db;

pub use server::serve;

/// What every handler can reach. Cheap to clone (all fields are handles).
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub redis: Option<Arc<RedisPool>>,
    pub tokens: Arc<TokenKeys>,
    pub limiter: Arc<RateLimiter>,
    pub rules: Arc<rules::registry::RuleRegistry>,
    pub bundles: Arc<rules::bundle::BundleManager>,
    pub recommender: Arc<recommend::snapshot::Recommender>,
    pub features: Arc<features::FeatureStore>,
    /// Finished recommendation lists, per user and query (`CACHE_TTL`).
    pub rec_cache: Arc<cache::Cache<recommend::response::RecommendationResponse>>,
    /// Recommendations, similar items and explanations.
    pub recommendations: Arc<recommend::service::Recommendations>,
    /// The business rules as requests run them (recommendations, dry runs).
    pub rule_runner: rules::runner::Runner,
    pub trending_cache: Arc<cache::Cache<recommend::trending::TrendingResponse>>,
    pub jobs: Arc<jobs::runner::Jobs>,
}

/// Connects to the configured database and applies pending migrations: all
/// the commands that only read or write data need, and where
/// [`AppState::build`] starts.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(
        &settings.database_url,
        settings.database_max_connections,
        settings.database_acquire_timeout,
    )
    .await?;
    db.migrate().await?;
    Ok(db)
}

impl AppState {
    /// [`AppState::open`], then trains the models before returning: what the
    /// tests and the one-shot commands want.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let state = Self::open(settings).await?;
        state.recommender.retrain(&state.db).await?;
        Ok(state)
    }

    /// Opens the database ([`open_database`]), creates the initial admin if
    /// one is configured, loads the rules, and prepares the Redis client
    /// when one is configured. Redis being down is not fatal: the service
    /// degrades to in-process state and says so in `/health`. The models are
    /// not trained yet: until they are, `/ready` says `starting` and
    /// recommendations come from the stored popularity
    /// ([`AppState::start_models`]).
    pub async fn open(settings: Settings) -> anyhow::Result<Self> {
        let db = open_database(&settings).await?;
        let redis = match &settings.redis_url {
            Some(url) => Some(Arc::new(RedisPool::new(
                url,
                &settings.redis_key_prefix,
                settings.redis,
            )?)),
            None => None,
        };
        auth::bootstrap::ensure_initial_admin(&db, &settings).await?;
        let engine = rules::engine::RuleEngine::with_compiled_dir(
            rules::engine::Limits {
                deadline: std::time::Duration::from_millis(settings.rule_deadline_ms),
                memory_bytes: settings.rule_memory_mb << 20,
                ..Default::default()
            },
            settings.compiled_rules_dir.clone(),
        )?;
        let registry = rules::registry::RuleRegistry::with_builtins(engine)?;
        registry.load_dir(&settings.rules_dir);
        rules::admin::apply_persisted(&registry, &db).await?;
        let registry = Arc::new(registry);
        let bundles = Arc::new(rules::bundle::BundleManager::new(
            registry.clone(),
            db.clone(),
            settings.bundle_public_keys.clone(),
            settings.bundle_caps(),
        ));
        // Come back on the revisions that were active before the restart.
        bundles.sync().await?;
        let recommender = Arc::new(recommend::snapshot::Recommender::new(
            settings.models_config(),
            features::Confidence::from_settings(&settings),
            settings.model_snapshots,
        ));
        let shared_caches = redis
            .clone()
            .map(|pool| cache::Shared::new(pool, &db, &settings.database_url));
        let rec_cache = Arc::new(cache::Cache::new(
            "recommendations",
            settings.cache_ttl,
            shared_caches.as_ref(),
            &settings.cache,
        ));
        let invalidate = {
            let rec_cache = rec_cache.clone();
            move || {
                let rec_cache = rec_cache.clone();
                tokio::spawn(async move { rec_cache.invalidate_all().await });
            }
        };
        bundles.spawn_sync(invalidate.clone());
        rules::admin::spawn_settings_sync(registry.clone(), db.clone(), invalidate.clone());
        if db.dialect == store::Dialect::Postgres {
            bundles.spawn_listener(settings.database_url.clone(), invalidate.clone());
        }
        rules::bundle::watch::spawn(bundles.clone(), settings.rules_dir.clone(), invalidate);
        let features = Arc::new(features::FeatureStore::new(
            db.clone(),
            &settings,
            shared_caches.as_ref(),
        ));
        let rule_runner = rules::runner::Runner::new(
            registry.clone(),
            bundles.clone(),
            settings.rule_concurrency,
        );
        let recommendations = Arc::new(recommend::service::Recommendations::new(
            features.clone(),
            recommender.clone(),
            rec_cache.clone(),
            settings.enable_business_rules.then(|| rule_runner.clone()),
            settings.hybrid_method,
            &telemetry::metrics::METRICS,
        ));
        Ok(Self {
            jobs: Arc::new(jobs::runner::Jobs::new()),
            recommendations,
            rule_runner,
            bundles,
            rec_cache,
            recommender,
            features,
            // Trending is cheap to recompute and global: in process only.
            trending_cache: Arc::new(cache::Cache::new(
                "trending",
                recommend::trending::TRENDING_CACHE_TTL,
                None,
                &settings.cache,
            )),
            rules: registry,
            tokens: Arc::new(TokenKeys::new(&settings)),
            limiter: Arc::new(RateLimiter::new(&settings, redis.clone())),
            settings: Arc::new(settings),
            db,
            redis,
        })
    }
}

impl AppState {
    /// The models, off the start-up path, so the service listens (and
    /// answers liveness probes) while they load or train: the newest stored
    /// snapshot if there is a usable one, else trained here, retried until
    /// it succeeds (the database may not be reachable yet); the handle
    /// ends there. From then on it follows the fleet
    /// ([`Self::follow_stored_models`]).
    pub fn start_models(&self) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                match state.recommender.load_or_train(&state.db).await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "first models failed; retrying in 5 s");
                        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    }
                }
            }
            state.recommendations_changed().await;
            if state.settings.model_snapshots {
                tokio::spawn(async move { state.follow_stored_models().await });
            }
        })
    }

    /// Loads each snapshot another replica stores: as it is announced
    /// (PostgreSQL), and at every `MODEL_SNAPSHOT_POLL_SECS`.
    async fn follow_stored_models(self) {
        if self.db.dialect == store::Dialect::Postgres {
            let listener = self.clone();
            store::notify::listen(
                self.settings.database_url.clone(),
                store::model_snapshots::NOTIFY_CHANNEL,
                move |_version| {
                    let state = listener.clone();
                    async move { state.load_stored_models().await }
                },
            );
        }
        loop {
            tokio::time::sleep(self.settings.model_snapshot_poll).await;
            self.load_stored_models().await;
        }
    }

    /// Serves the newest stored snapshot if it is newer than what serves.
    async fn load_stored_models(&self) {
        match self.recommender.load_stored(&self.db).await {
            Ok(Some(_)) => self.recommendations_changed().await,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "stored models not loaded"),
        }
    }

    /// Whether the first models are trained (or loaded).
    pub fn is_ready(&self) -> bool {
        self.recommender.snapshot().version > 0
    }

    /// Starts the job system (scheduler, stale-run sweep, fleet listener)
    /// and sets the gauges once. Apart from `serve`, only the tests that
    /// exercise the scheduler start it.
    pub async fn start_jobs(&self) -> anyhow::Result<()> {
        if let Err(e) = jobs::work::update_metrics(self).await {
            tracing::warn!(error = %format!("{e:#}"), "initial gauges not set");
        }
        jobs::scheduler::start(self).await
    }
}

/// What a change invalidates, in one place.
impl AppState {
    /// A new interaction: the user's features and lists, the item's stats.
    pub async fn interaction_recorded(&self, user_id: i64, item_id: i64) {
        self.features.invalidate_user(user_id).await;
        self.features.invalidate_item(item_id).await;
        self.rec_cache.invalidate_group(&user_id.to_string()).await;
    }

    /// An item created, changed or deleted: its features, and every list
    /// (it may be in anyone's).
    pub async fn item_changed(&self, item_id: i64) {
        self.features.invalidate_item(item_id).await;
        self.rec_cache.invalidate_all().await;
        self.trending_cache.invalidate_all().await;
    }

    /// A user's preferences changed.
    pub async fn user_changed(&self, user_id: i64) {
        self.features.invalidate_user(user_id).await;
        self.rec_cache.invalidate_group(&user_id.to_string()).await;
    }

    /// The user is gone, and with them their interactions: the counts of
    /// the items they touched changed too.
    pub async fn user_deleted(&self, user_id: i64, touched_items: &[i64]) {
        self.user_changed(user_id).await;
        for &item_id in touched_items {
            self.features.invalidate_item(item_id).await;
        }
    }

    /// New models or new rules: every cached list is stale.
    pub async fn recommendations_changed(&self) {
        self.rec_cache.invalidate_all().await;
    }

    /// Retrains the models and drops the lists the old ones made.
    pub async fn retrain(&self) -> anyhow::Result<recommend::snapshot::TrainingReport> {
        let report = self.recommender.retrain(&self.db).await?;
        self.recommendations_changed().await;
        Ok(report)
    }
}

/// The application: router plus middleware, ready to serve or to test.
pub fn app(state: AppState) -> axum::Router {
    api::router(state)
}
