//! JWTs: HS256 access and refresh tokens.
//!
//! Only HS256 is accepted when decoding, so `alg: none` and algorithm
//! confusion are refused by construction. Every token carries `sub`, `iat`,
//! `exp`, `jti` and `typ`; an access token used where a refresh token is
//! expected (or the reverse) is refused by `typ`. Access tokens also carry
//! the user's token version (`ver`), which logging out everywhere bumps,
//! and their session (`fam`, the refresh-token family they were minted
//! with), which reuse detection and logout revoke.
//!
//! A token whose `iat` or `nbf` lies in the future (beyond
//! [`CLOCK_SKEW_SECS`] for replicas whose clocks differ slightly) is
//! refused: the service never mints one, so it was forged with a leaked
//! key or minted by a misconfigured clock, and could otherwise be made to
//! outlive a revocation that happened before its claimed issue time.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    config::Settings,
    error::{AppError, AppResult},
    store::users::Role,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub typ: TokenKind,
    /// Access tokens: the role at issue time (the extractor re-reads the
    /// current role from the database, so a demotion takes effect at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Access tokens: the user's token version at issue time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
    /// The session: the refresh-token rotation family. Refresh tokens
    /// belong to it; access tokens were minted by it and die with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Not before; the service never sets it, but honours it if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// How far in the future `iat` / `nbf` may lie: clock differences between
/// replicas, nothing more.
pub const CLOCK_SKEW_SECS: i64 = 30;

impl Claims {
    pub fn user_id(&self) -> AppResult<i64> {
        self.sub
            .parse()
            .map_err(|_| AppError::Unauthorized("Invalid token".into()))
    }
}

/// Signing and verification keys, built once from `SECRET_KEY`.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
}

impl TokenKeys {
    pub fn new(settings: &Settings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "jti"]);
        // Expiry is exact: a token is dead the second it expires.
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(settings.secret_key.as_bytes()),
            decoding: DecodingKey::from_secret(settings.secret_key.as_bytes()),
            validation,
            access_ttl_secs: settings.access_token_expire_minutes * 60,
            refresh_ttl_secs: settings.refresh_token_expire_days * 86_400,
        }
    }

    pub fn sign(&self, claims: &Claims) -> AppResult<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("signing a token failed: {e}")))
    }

    /// Verifies signature, algorithm, expiry and kind. Every failure is the
    /// same 401: a client learns nothing about why a forged token failed.
    pub fn verify(&self, token: &str, expected: TokenKind) -> AppResult<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AppError::Unauthorized("Could not validate credentials".into()))?;
        let latest = chrono::Utc::now().timestamp() + CLOCK_SKEW_SECS;
        let from_the_future =
            data.claims.iat > latest || data.claims.nbf.is_some_and(|nbf| nbf > latest);
        if data.claims.typ != expected || from_the_future {
            return Err(AppError::Unauthorized(
                "Could not validate credentials".into(),
            ));
        }
        Ok(data.claims)
    }

    /// An access token of session `family`.
    pub fn access_claims(&self, user_id: i64, role: Role, version: i64, family: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.access_ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: TokenKind::Access,
            role: Some(role),
            ver: Some(version),
            fam: Some(family.to_string()),
            nbf: None,
        }
    }

    pub fn refresh_claims(&self, user_id: i64, family: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + self.refresh_ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            typ: TokenKind::Refresh,
            role: None,
            ver: None,
            fam: Some(family.to_string()),
            nbf: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Settings::for_tests("sqlite::memory:"))
    }

    #[test]
    fn round_trip_and_kind_check() {
        let k = keys();
        let token = k.sign(&k.access_claims(7, Role::Ops, 3, "f")).unwrap();
        let claims = k.verify(&token, TokenKind::Access).unwrap();
        assert_eq!(claims.user_id().unwrap(), 7);
        assert_eq!(claims.role, Some(Role::Ops));
        assert_eq!(claims.ver, Some(3));
        assert!(k.verify(&token, TokenKind::Refresh).is_err());
    }

    #[test]
    fn other_keys_and_expired_tokens_fail() {
        let k = keys();
        let mut other_settings = Settings::for_tests("sqlite::memory:");
        other_settings.secret_key = "another-secret-key-that-is-long-enough".into();
        let other = TokenKeys::new(&other_settings);
        let forged = other
            .sign(&other.access_claims(1, Role::Admin, 0, "f"))
            .unwrap();
        assert!(k.verify(&forged, TokenKind::Access).is_err());

        let mut claims = k.access_claims(1, Role::User, 0, "f");
        claims.exp = chrono::Utc::now().timestamp() - 1;
        let expired = k.sign(&claims).unwrap();
        assert!(k.verify(&expired, TokenKind::Access).is_err());
    }

    #[test]
    fn tokens_from_the_future_fail_beyond_the_clock_skew() {
        let k = keys();
        let now = chrono::Utc::now().timestamp();
        let with = |iat: i64, nbf: Option<i64>| {
            let mut c = k.refresh_claims(1, "f");
            c.iat = iat;
            c.nbf = nbf;
            k.verify(&k.sign(&c).unwrap(), TokenKind::Refresh)
        };
        assert!(with(now, None).is_ok());
        assert!(with(now + 5, Some(now + 5)).is_ok(), "within the skew");
        assert!(with(now + 3600, None).is_err(), "iat an hour ahead");
        assert!(with(now, Some(now + 3600)).is_err(), "nbf an hour ahead");
    }
}
