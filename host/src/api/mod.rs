//! The HTTP surface: one `router()` per resource, merged under `/api/v1`,
//! plus the operational routes (`/health`, `/openapi.json`, `/docs`).
//! Handlers stay thin: they parse, call the domain code in `store/` (and,
//! later, `recommend/`, `rules/`, `jobs/`), and shape the answer.

pub mod extract;
pub mod health;
pub mod interactions;
pub mod items;
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

use crate::{AppState, error::AppError, telemetry};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "recengine",
        description = "Recommendation service with business rules as sandboxed WebAssembly components. \
                       Errors are `{\"detail\": \"...\"}`; every response carries `X-Request-ID`."
    ),
    paths(
        health::health,
        users::create_user, users::list_users, users::get_user, users::update_user, users::delete_user,
        items::create_item, items::list_items, items::popular_items, items::get_item,
        items::update_item, items::delete_item,
        interactions::create_interaction, interactions::user_interactions,
        interactions::item_interactions, interactions::user_stats,
    ),
    tags(
        (name = "users", description = "Accounts"),
        (name = "items", description = "The catalogue"),
        (name = "interactions", description = "What users did with items"),
        (name = "operations", description = "Health and monitoring"),
    )
)]
pub struct ApiDoc;

/// The whole application router, with its middleware.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(users::router())
        .merge(items::router())
        .merge(interactions::router())
        .route("/health", get(health::health));

    let max_body = state.settings.max_body_bytes;
    Router::new()
        .nest("/api/v1", api)
        .route("/health", get(health::health))
        // Swagger UI's assets are compiled into the binary (the `vendored`
        // feature): the docs work on a machine with no internet access.
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(telemetry::request::request_context))
        .with_state(state)
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
