//! The HTTP surface: one `router()` per resource, its routes under
//! `/api/v1`, plus the operational routes (`/health`, `/ready`, `/metrics`,
//! `/openapi.json`, `/docs`, the console).
//!
//! Each resource registers its handlers once, with `utoipa-axum`'s
//! `routes!`: the router and the OpenAPI document's paths come from the
//! same list, and each handler's `#[utoipa::path]` gives its full path.
//! Handlers stay thin: they parse, call the domain code (`store/`,
//! `recommend/`, `features/`, `rules/`, `jobs/`) and shape the answer; who
//! may call one is in its signature (`CurrentUser`, `Ops`, `Admin`).
//!
//! # Layout
//! - [`auth`], [`users`], [`items`], [`interactions`], [`recommendations`],
//!   [`features`], [`models`], [`jobs`], [`bundles`], [`rules`]: the
//!   `/api/v1` resources.
//! - [`health`]: the probes: liveness at `/health` and `/api/v1/health`,
//!   readiness at `/ready`.
//! - [`console`]: the operator console's static page.
//! - [`extract`]: extractors that refuse bad input with `{"detail"}`.
//! - [`doc`]: what the OpenAPI document says beyond the handlers' own
//!   annotations.

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
use utoipa::{Modify, OpenApi};
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouter},
    routes,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{AppState, error::AppError, ratelimit, telemetry};
use doc::{BearerAuth, StandardErrors};

/// The document's frame; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "recengine",
        description = "Recommendation service with business rules as sandboxed WebAssembly components. \
                       Errors are `{\"detail\": \"...\"}`; every response carries `X-Request-ID`. \
                       Rate-limited routes carry `X-RateLimit-*` headers."
    ),
    components(schemas(doc::ErrorBody)),
    modifiers(&BearerAuth),
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

/// The documented routes and the OpenAPI document they make.
fn documented(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .split_for_parts();
    // Once every route is in: the errors follow from each route's shape.
    StandardErrors.modify(&mut openapi);
    (routes, openapi)
}

/// Registering a collection's routes at `/things/` and, undocumented, at
/// `/things`: clients call both; the document names the one.
trait SlashOptional {
    fn routes_slash_optional(self, routes: UtoipaMethodRouter<AppState>) -> Self;
}

impl SlashOptional for OpenApiRouter<AppState> {
    fn routes_slash_optional(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        let (_, paths, method_router) = &routes;
        let bare = paths
            .paths
            .keys()
            .next()
            .expect("routes! names a path")
            .trim_end_matches('/')
            .to_string();
        self.route(&bare, method_router.clone()).routes(routes)
    }
}

/// The whole application router, with its middleware.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = documented(&state);
    let max_body = state.settings.max_body_bytes;
    let cors = cors_layer(&state.settings.cors_origins);
    api
        // The probe answers under the API prefix too, undocumented.
        .route("/api/v1/health", get(health::health))
        .route("/metrics", get(telemetry::metrics::scrape))
        .merge(console::router())
        // Swagger UI's assets are compiled into the binary (the `vendored`
        // feature): the docs work on a machine with no internet access.
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
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
