//! The HTTP surface: one `router()` per resource, merged under `/api/v1`,
//! plus the operational routes (`/health`, `/openapi.json`, `/docs`).
//! Handlers stay thin: they parse, call the domain code in `store/` (and,
//! later, `recommend/`, `rules/`, `jobs/`), and shape the answer.

pub mod auth;
pub mod bundles;
pub mod console;
pub mod doc;
pub mod extract;
pub mod features;
pub mod health;
pub mod interactions;
pub mod items;
pub mod jobs;
pub mod models;
pub mod recommendations;
pub mod rules;
pub mod users;

use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{Method, StatusCode},
    middleware,
    response::IntoResponse,
    routing::get,
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{AppState, error::AppError, ratelimit, telemetry};
use doc::{BearerAuth, StandardErrors};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "recengine",
        description = "Recommendation service with business rules as sandboxed WebAssembly components. \
                       Errors are `{\"detail\": \"...\"}`; every response carries `X-Request-ID`. \
                       Rate-limited routes carry `X-RateLimit-*` headers."
    ),
    paths(
        health::health,
        auth::register, auth::login, auth::refresh, auth::logout, auth::me,
        users::set_role,
        users::create_user, users::list_users, users::get_user, users::update_user, users::delete_user,
        items::create_item, items::list_items, items::popular_items, items::get_item,
        items::update_item, items::delete_item,
        interactions::create_interaction, interactions::user_interactions,
        interactions::item_interactions, interactions::user_stats,
        recommendations::for_user, recommendations::for_user_post, recommendations::batch_for_user,
        recommendations::similar_items, recommendations::trending, recommendations::explain,
        features::user_features, features::users_batch, features::item_features,
        features::items_batch, features::user_item_features, features::user_items_batch,
        features::invalidate_all, features::invalidate_user, features::invalidate_item,
        models::status, models::retrain,
        jobs::list_jobs, jobs::trigger, jobs::get_run, jobs::list_runs,
        bundles::upload, bundles::list, bundles::status, bundles::history, bundles::rollback,
        bundles::remove, bundles::start_shadow, bundles::shadow_report, bundles::stop_shadow,
        bundles::promote_shadow,
        rules::list_rules, rules::get_rule, rules::change_rule, rules::remove_rule, rules::dry_run,
    ),
    components(schemas(doc::ErrorBody)),
    modifiers(&BearerAuth, &StandardErrors),
    tags(
        (name = "auth", description = "Tokens: register, login, refresh, logout"),
        (name = "users", description = "Accounts"),
        (name = "items", description = "The catalogue"),
        (name = "interactions", description = "What users did with items"),
        (name = "recommendations", description = "Recommendations after the business rules"),
        (name = "features", description = "The feature store: users, items, user-item pairs; cache invalidation"),
        (name = "bundles", description = "Rule bundles: upload, status, history, rollback, removal"),
        (name = "jobs", description = "Scheduled jobs: schedules, manual triggers, run status and history"),
        (name = "models", description = "The trained models: status, retrain"),
        (name = "rules", description = "Business rules (Wasm components): list, change, dry run"),
        (name = "operations", description = "Health and monitoring"),
    )
)]
pub struct ApiDoc;

/// The whole application router, with its middleware.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(items::router())
        .merge(interactions::router())
        .merge(recommendations::router())
        .merge(features::router())
        .merge(models::router())
        .merge(jobs::router())
        .merge(bundles::router(state.settings.max_bundle_bytes))
        .merge(rules::router())
        .route("/health", get(health::health));

    let max_body = state.settings.max_body_bytes;
    let cors = cors_layer(&state.settings.cors_origins);
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(health::health))
        .route("/metrics", get(telemetry::metrics::scrape))
        .merge(console::router())
        // Swagger UI's assets are compiled into the binary (the `vendored`
        // feature): the docs work on a machine with no internet access.
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        // Layers run outside-in from the last added: request id and access
        // log first, then who is calling, then the rate limit (after
        // routing, so it can key per-route limits by the route template).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::identify::identify,
        ))
        .layer(middleware::from_fn(telemetry::metrics::track))
        .layer(middleware::from_fn(telemetry::request::request_context))
        // Outermost: a preflight is answered before auth or limits see it.
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

/// `CORS_ORIGINS`: none (the default) adds no CORS headers, so browsers
/// keep other sites out; a list allows those origins, `*` any.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([axum::http::HeaderName::from_static("x-request-id")])
        .max_age(std::time::Duration::from_secs(600));
    Some(layer)
}

async fn not_found() -> AppError {
    AppError::NotFound("Not Found".into())
}

async fn method_not_allowed(method: Method) -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(serde_json::json!({ "detail": format!("Method {method} Not Allowed") })),
    )
}
