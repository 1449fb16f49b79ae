//! `/api/v1/auth`: register, login, refresh, logout, me.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    extract::{ApiJson, Validate},
    users::{UserCreate, register as register_user},
};
use crate::{
    AppState,
    auth::{
        extract::CurrentUser,
        password::MAX_PASSWORD_LEN,
        session::{self, TokenPair},
    },
    error::{AppError, AppResult},
    store::users::User,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 254)]
    pub email: String,
    #[schema(max_length = 128)]
    pub password: String,
}

impl Validate for LoginRequest {
    fn validate(&self) -> Result<(), String> {
        // Absurd inputs are refused before any hashing work.
        if self.email.chars().count() > 254 || self.password.chars().count() > MAX_PASSWORD_LEN {
            return Err("email or password too long".into());
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(max_length = 4096)]
    pub refresh_token: String,
}

impl Validate for RefreshRequest {
    fn validate(&self) -> Result<(), String> {
        if self.refresh_token.chars().count() > 4096 {
            return Err("refresh_token too long".into());
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// End this session only. Without it, every session of the user ends
    /// and every access token issued so far stops working.
    pub refresh_token: Option<String>,
}

/// Creates an account with the `user` role (roles are changed by an admin).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = UserCreate,
    responses((status = 201, body = User),
        (status = 400, description = "Username already exists / Email already registered")))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UserCreate>,
) -> AppResult<(StatusCode, Json<User>)> {
    Ok((
        StatusCode::CREATED,
        Json(register_user(&state, body).await?),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair),
        (status = 401, description = "Wrong email or password")))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenPair>> {
    let (user, pair) = session::login(&state, &body.email, &body.password).await?;
    tracing::info!(user_id = user.id, "login");
    Ok(Json(pair))
}

/// Spends the refresh token (each works once) and returns a new pair.
/// Reusing a spent token revokes every token of its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair),
        (status = 401, description = "Not a valid, unspent refresh token")))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenPair>> {
    Ok(Json(session::refresh(&state, &body.refresh_token).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = Option<LogoutRequest>,
    security(("bearer" = [])), responses((status = 204), (status = 401)))]
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
    body: axum::body::Bytes,
) -> AppResult<StatusCode> {
    // The body is optional: an empty one means "log out everywhere".
    let body: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::Validation(format!("Invalid request body: {e}")))?
    };
    session::logout(&state, &user.0, body.refresh_token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401)))]
pub async fn me(user: CurrentUser) -> Json<User> {
    Json(user.0)
}
