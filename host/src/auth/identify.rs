//! Reads the bearer token of every request (signature and expiry only, no
//! database) so the rate limiter can key authenticated callers by user and
//! the access log can name them. Enforcement stays with the
//! extractors in [`super::extract`].

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};

use super::{extract::bearer_token, tokens::TokenKind};
use crate::{AppState, telemetry::request::AuthenticatedUser};

/// The user id from a validly signed, unexpired access token.
#[derive(Debug, Clone, Copy)]
pub struct TokenIdentity(pub i64);

pub async fn identify(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let identity = bearer_token(&parts)
        .and_then(|t| state.tokens.verify(t, TokenKind::Access).ok())
        .and_then(|c| c.user_id().ok())
        .map(TokenIdentity);
    if let Some(id) = identity {
        parts.extensions.insert(id);
    }
    req = Request::from_parts(parts, body);
    let mut response = next.run(req).await;
    if let Some(TokenIdentity(id)) = identity {
        response.extensions_mut().insert(AuthenticatedUser(id));
    }
    response
}
