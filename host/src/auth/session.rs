//! Sessions: login, refresh rotation, logout. Domain code, free of HTTP.

use serde::Serialize;
use utoipa::ToSchema;

use super::{password, tokens::TokenKind};
use crate::{
    AppState,
    error::{AppError, AppResult},
    store::{
        refresh_tokens::{self, Consumed},
        users::{self, User},
    },
};

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

fn bad_credentials() -> AppError {
    AppError::Unauthorized("Incorrect email or password".into())
}

/// Checks the password (same cost whether or not the account exists) and
/// opens a new refresh-token family.
pub async fn login(state: &AppState, email: &str, password: &str) -> AppResult<(User, TokenPair)> {
    let found = users::find_by_email(&state.db, email).await?;
    let stored_hash = found.as_ref().map(|(_, h)| h.clone());
    if !password::verify_password(password.to_string(), stored_hash).await {
        return Err(bad_credentials());
    }
    let (user, _) = found.ok_or_else(bad_credentials)?;
    if !user.is_active {
        return Err(bad_credentials());
    }
    let family = uuid::Uuid::new_v4().to_string();
    let pair = issue_pair(state, &user, &family).await?;
    Ok((user, pair))
}

async fn issue_pair(state: &AppState, user: &User, family: &str) -> AppResult<TokenPair> {
    let version = users::token_version(&state.db, user.id)
        .await?
        .ok_or_else(bad_credentials)?;
    let keys = &state.tokens;
    let access = keys.access_claims(user.id, user.role, version, family);
    let refresh = keys.refresh_claims(user.id, family);
    refresh_tokens::insert(
        &state.db,
        &refresh.jti,
        user.id,
        family,
        refresh.iat,
        refresh.exp,
    )
    .await?;
    Ok(TokenPair {
        access_token: keys.sign(&access)?,
        refresh_token: keys.sign(&refresh)?,
        token_type: "bearer",
        expires_in: keys.access_ttl_secs,
    })
}

/// Spends a refresh token and issues its successor.
pub async fn refresh(state: &AppState, refresh_token: &str) -> AppResult<TokenPair> {
    let claims = state.tokens.verify(refresh_token, TokenKind::Refresh)?;
    let invalid = || AppError::Unauthorized("Invalid or expired refresh token".into());
    match refresh_tokens::consume(&state.db, &claims.jti).await? {
        Consumed::Rotated { user_id, family_id } => {
            let user = users::get(&state.db, user_id)
                .await?
                .filter(|u| u.is_active)
                .ok_or_else(invalid)?;
            issue_pair(state, &user, &family_id).await
        }
        Consumed::ReuseDetected | Consumed::Invalid => Err(invalid()),
    }
}

/// With a refresh token: ends that session (its family), the access tokens
/// it minted included. Without: ends every session of the user.
pub async fn logout(state: &AppState, user: &User, refresh_token: Option<&str>) -> AppResult<()> {
    match refresh_token {
        Some(token) => {
            let claims = state.tokens.verify(token, TokenKind::Refresh)?;
            let family = refresh_tokens::family_of(&state.db, &claims.jti, user.id)
                .await?
                .ok_or_else(|| AppError::Unauthorized("Invalid refresh token".into()))?;
            refresh_tokens::revoke_family(&state.db, &family).await
        }
        None => {
            refresh_tokens::revoke_all_for_user(&state.db, user.id).await?;
            users::bump_token_version(&state.db, user.id).await
        }
    }
}
