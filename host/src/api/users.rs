//! `/api/v1/users`: account CRUD.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    SlashOptional,
    doc::UserId,
    extract::{ApiJson, ApiPath, ApiQuery, Pagination, Validate},
};
use crate::{
    AppState,
    auth::{
        extract::{Admin, CurrentUser},
        password,
    },
    error::{AppError, AppResult},
    store::users::{self, NewUser, Role, User, UserChanges},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes_slash_optional(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_role))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    /// 3 to 50 characters: letters, digits, `_`, `-`, `.`.
    #[schema(min_length = 3, max_length = 50, pattern = r"^[\w.-]+$")]
    pub username: String,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<Value>,
}

impl Validate for UserCreate {
    fn validate(&self) -> Result<(), String> {
        validate_username(&self.username)?;
        validate_email(&self.email)?;
        password::validate_password(&self.password)?;
        validate_preferences(self.preferences.as_ref())
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// 3 to 50 characters: letters, digits, `_`, `-`, `.`.
    #[schema(min_length = 3, max_length = 50, pattern = r"^[\w.-]+$")]
    pub username: Option<String>,
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// 8 to 128 characters; ends every session of the account.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<Value>,
}

impl Validate for UserUpdate {
    fn validate(&self) -> Result<(), String> {
        if let Some(u) = &self.username {
            validate_username(u)?;
        }
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        if let Some(p) = &self.password {
            password::validate_password(p)?;
        }
        validate_preferences(self.preferences.as_ref())
    }
}

pub fn validate_username(username: &str) -> Result<(), String> {
    let len = username.chars().count();
    if !(3..=50).contains(&len) {
        return Err("username must be 3 to 50 characters".into());
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("username may contain only letters, digits, '_', '-' and '.'".into());
    }
    Ok(())
}

/// A pragmatic check (one `@`, a dotted domain, no spaces): the real proof
/// of an address is mail reaching it, which is not this service's job.
pub fn validate_email(email: &str) -> Result<(), String> {
    let email = email.trim();
    let valid = email.chars().count() <= 254
        && !email.contains(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(())
    } else {
        Err("email is not a valid address".into())
    }
}

pub fn validate_preferences(preferences: Option<&Value>) -> Result<(), String> {
    match preferences {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err("preferences must be a JSON object".into()),
    }
}

/// Creates an account with the `user` role.
#[utoipa::path(post, path = "/api/v1/users/", tag = "users", request_body = UserCreate,
    responses((status = 201, body = User), (status = 400, description = "Username already exists / Email already registered"), (status = 422)))]
pub async fn create_user(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<UserCreate>,
) -> AppResult<(StatusCode, Json<User>)> {
    let user = register(&state, body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Shared by `POST /users/` and `POST /auth/register`.
pub async fn register(state: &AppState, body: UserCreate) -> AppResult<User> {
    let password_hash = password::hash_password(body.password).await?;
    users::create(
        &state.db,
        NewUser {
            username: body.username,
            email: body.email,
            password_hash,
            role: Role::User,
            preferences: body
                .preferences
                .unwrap_or_else(|| Value::Object(Default::default())),
        },
    )
    .await
}

/// Every account (admin only: the list holds email addresses).
#[utoipa::path(get, path = "/api/v1/users/", tag = "users", params(Pagination), security(("bearer" = [])),
    responses((status = 200, body = [User]), (status = 401), (status = 403), (status = 422)))]
pub async fn list_users(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(page): ApiQuery<Pagination>,
) -> AppResult<Json<Vec<User>>> {
    Ok(Json(users::list(&state.db, page.into()).await?))
}

/// One account: your own, or any for an admin.
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users", params(UserId), security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401), (status = 403), (status = 404)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(user_id): ApiPath<i64>,
) -> AppResult<Json<User>> {
    caller.require_self_or_admin(user_id)?;
    users::get(&state.db, user_id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found("User"))
}

/// Changes your own account (or any, for an admin). A new password ends
/// every session of the account.
#[utoipa::path(put, path = "/api/v1/users/{user_id}", tag = "users", params(UserId), request_body = UserUpdate,
    security(("bearer" = [])),
    responses((status = 200, body = User),
        (status = 400, description = "Username already exists / Email already registered"),
        (status = 403), (status = 404)))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(user_id): ApiPath<i64>,
    ApiJson(body): ApiJson<UserUpdate>,
) -> AppResult<Json<User>> {
    caller.require_self_or_admin(user_id)?;
    let password_changed = body.password.is_some();
    let password_hash = match body.password {
        Some(p) => Some(password::hash_password(p).await?),
        None => None,
    };
    let user = users::update(
        &state.db,
        user_id,
        UserChanges {
            username: body.username,
            email: body.email,
            password_hash,
            preferences: body.preferences,
            ..Default::default()
        },
    )
    .await?;
    state.user_changed(user_id).await;
    if password_changed {
        crate::store::refresh_tokens::revoke_all_for_user(&state.db, user_id).await?;
        users::bump_token_version(&state.db, user_id).await?;
    }
    Ok(Json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
}

impl Validate for RoleChange {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Changes an account's role (admin only). The account's tokens, refresh
/// tokens included, are revoked so the new role applies from its next login.
#[utoipa::path(put, path = "/api/v1/users/{user_id}/role", tag = "users", params(UserId), request_body = RoleChange,
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 403), (status = 404),
        (status = 409, description = "The last admin cannot demote itself")))]
pub async fn set_role(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(user_id): ApiPath<i64>,
    ApiJson(body): ApiJson<RoleChange>,
) -> AppResult<Json<User>> {
    if user_id == caller.id && body.role != Role::Admin {
        // The last admin demoting itself would leave nobody able to undo it.
        if users::count_admins(&state.db).await? <= 1 {
            return Err(AppError::Conflict(
                "Refusing to demote the last admin".into(),
            ));
        }
    }
    let user = users::update(
        &state.db,
        user_id,
        UserChanges {
            role: Some(body.role),
            ..Default::default()
        },
    )
    .await?;
    // Every session of the account ends: its refresh tokens would
    // otherwise keep minting access tokens under the old grant.
    crate::store::refresh_tokens::revoke_all_for_user(&state.db, user_id).await?;
    users::bump_token_version(&state.db, user_id).await?;
    tracing::info!(
        target_user = user_id,
        role = body.role.as_str(),
        "role changed"
    );
    Ok(Json(user))
}

/// Deletes the account and its interactions (your own, or any for an admin).
/// The last admin cannot be deleted (409), as it cannot be demoted.
#[utoipa::path(delete, path = "/api/v1/users/{user_id}", tag = "users", params(UserId), security(("bearer" = [])),
    responses((status = 204), (status = 403), (status = 404),
        (status = 409, description = "The last admin cannot delete itself")))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiPath(user_id): ApiPath<i64>,
) -> AppResult<StatusCode> {
    caller.require_self_or_admin(user_id)?;
    let target_is_admin = if user_id == caller.id() {
        caller.role() == Role::Admin
    } else {
        users::get(&state.db, user_id)
            .await?
            .is_some_and(|u| u.role == Role::Admin)
    };
    // Nobody would be left to manage accounts, roles or bundles.
    if target_is_admin && users::count_admins(&state.db).await? <= 1 {
        return Err(AppError::Conflict(
            "Refusing to delete the last admin".into(),
        ));
    }
    if let Some(touched_items) = users::delete(&state.db, user_id).await? {
        state.user_deleted(user_id, &touched_items).await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("User"))
    }
}
