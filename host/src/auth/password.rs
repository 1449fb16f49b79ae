//! Password hashing with argon2id.
//!
//! Parameters follow OWASP's password storage cheat sheet minimum for
//! argon2id: 19 MiB of memory, 2 iterations, 1 lane. Hashing runs on the
//! blocking pool: at ~20 ms of CPU it would otherwise stall a runtime worker
//! and every request queued behind it.

use std::sync::LazyLock;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};

use crate::error::{AppError, AppResult};

pub const MIN_PASSWORD_LEN: usize = 8;
/// Longer inputs are refused before hashing: they buy no security and let a
/// client make the server hash megabytes per request. Counted in characters,
/// as the API documents it (so at most 512 bytes of UTF-8).
pub const MAX_PASSWORD_LEN: usize = 128;

const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, verified against when the account does not
/// exist, so that "unknown email" and "wrong password" take the same time and
/// an attacker cannot enumerate accounts by timing the login.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let random = uuid::Uuid::new_v4().to_string();
    hasher()
        .hash_password(random.as_bytes(), &salt)
        .expect("hashing a fixed-size input cannot fail")
        .to_string()
});

/// Checks the length bounds; the message is safe to show to the client.
pub fn validate_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(e.into()))?
}

/// Verifies in constant time (argon2's comparison). `stored` is `None` for an
/// unknown account: a dummy hash is verified instead so both paths cost the
/// same. An unusable or malformed stored hash never verifies.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    if password.chars().count() > MAX_PASSWORD_LEN {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (DUMMY_HASH.clone(), false),
        };
        let ok = match PasswordHash::new(&hash) {
            Ok(parsed) => hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => {
                // Still spend the hashing time on the dummy.
                let parsed = PasswordHash::new(&DUMMY_HASH).expect("dummy hash parses");
                let _ = hasher().verify_password(password.as_bytes(), &parsed);
                false
            }
        };
        ok && real
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_per_salt() {
        let a = hash_password("correct horse".into()).await.unwrap();
        let b = hash_password("correct horse".into()).await.unwrap();
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(verify_password("correct horse".into(), Some(a.clone())).await);
        assert!(!verify_password("wrong horse!".into(), Some(a)).await);
    }

    #[tokio::test]
    async fn unknown_accounts_and_unusable_hashes_never_verify() {
        assert!(!verify_password("anything-at-all".into(), None).await);
        assert!(!verify_password("anything-at-all".into(), Some("!".into())).await);
    }

    #[test]
    fn length_bounds() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert!(validate_password(&"x".repeat(129)).is_err());
    }
}
