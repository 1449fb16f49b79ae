//! `CurrentUser`: the authenticated caller, checked against the database on
//! every request (so a deleted, deactivated, demoted or logged-out user's
//! token, or one whose session was revoked, stops working at once, not
//! when it expires).
//!
//! [`Ops`] and [`Admin`]: a caller with that role, so a handler's signature
//! says who may call it. Either refuses before the handler's path, query
//! or body is read: 401 without valid credentials, then 403 for another
//! role.

use axum::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    http::request::Parts,
};

use super::tokens::TokenKind;
use crate::{
    AppState,
    error::{AppError, AppResult},
    store::users::{self, Role, User},
};

#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The roles that may operate the service.
const OPS: &[Role] = &[Role::Ops, Role::Admin];

/// The bearer token of a request, if it sent one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let token = bearer_token(parts)
            .ok_or_else(|| AppError::Unauthorized("Not authenticated".into()))?;
        let claims = state.tokens.verify(token, TokenKind::Access)?;
        let invalid = || AppError::Unauthorized("Could not validate credentials".into());
        // Every access token the service mints names its session.
        let session = claims.fam.as_deref().ok_or_else(invalid)?;
        let found = users::get_for_auth(&state.db, claims.user_id()?, session)
            .await?
            .ok_or_else(invalid)?;
        if !found.user.is_active || claims.ver != Some(found.token_version) || found.session_revoked
        {
            return Err(invalid());
        }
        Ok(CurrentUser(found.user))
    }
}

/// `Option<CurrentUser>`: `None` without credentials; bad credentials are
/// still a 401 (a client that sends a token wants to know it is wrong).
impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Option<Self>> {
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            <Self as FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

impl CurrentUser {
    pub fn id(&self) -> i64 {
        self.0.id
    }

    pub fn role(&self) -> Role {
        self.0.role
    }

    /// 403 unless the caller has one of `roles`.
    fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "This action requires the {} role",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// 403 unless the caller has the ops or admin role: for a check the
    /// handler makes itself (item writes: a setting decides, after the
    /// body is read), where [`Ops`] in the signature cannot say it.
    pub fn require_ops(&self) -> AppResult<()> {
        self.require(OPS)
    }

    /// A user may act on its own account; an admin on any.
    pub fn require_self_or_admin(&self, user_id: i64) -> AppResult<()> {
        if self.0.id == user_id || self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "You may only access your own account".into(),
            ))
        }
    }

    /// A user may read its own data; ops and admins any user's.
    pub fn require_self_or_ops(&self, user_id: i64) -> AppResult<()> {
        if self.0.id == user_id || self.0.role >= Role::Ops {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "You may only access your own data".into(),
            ))
        }
    }
}

/// A caller with the ops or admin role.
#[derive(Debug, Clone)]
pub struct Ops(pub User);

impl FromRequestParts<AppState> for Ops {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        with_role(parts, state, OPS).await.map(Ops)
    }
}

/// A caller with the admin role.
#[derive(Debug, Clone)]
pub struct Admin(pub User);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        with_role(parts, state, &[Role::Admin]).await.map(Admin)
    }
}

/// The authenticated caller (401 otherwise) if it has one of `roles`
/// (403 otherwise).
async fn with_role(parts: &mut Parts, state: &AppState, roles: &[Role]) -> AppResult<User> {
    let caller =
        <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
    caller.require(roles)?;
    Ok(caller.0)
}
