//! Who is who: the token key and lifetimes, the initial admin, and whether
//! item writes need the ops role.

use super::{AppEnv, Settings, env::Env};

/// The `SECRET_KEY` used when none is configured. Fine on a laptop; refused in
/// production, where it would let anyone mint valid tokens.
pub const DEV_SECRET_KEY: &str = "dev-only-insecure-secret-key-change-me";
/// Shorter HMAC keys are brute-forceable; OWASP and RFC 7518 ask for at least
/// the hash size (256 bits) for HS256.
pub const MIN_PRODUCTION_SECRET_LEN: usize = 32;

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.text("SECRET_KEY", &mut s.secret_key);
    if s.app_env == AppEnv::Production {
        if s.secret_key == DEV_SECRET_KEY {
            env.error(
                "SECRET_KEY is not set: production refuses the development default; \
                 set a random value of at least 32 characters (e.g. `openssl rand -hex 32`)",
            );
        } else if s.secret_key.len() < MIN_PRODUCTION_SECRET_LEN {
            env.error(format!(
                "SECRET_KEY is {} characters: production needs at least {MIN_PRODUCTION_SECRET_LEN}",
                s.secret_key.len()
            ));
        }
    }
    env.read(
        "ACCESS_TOKEN_EXPIRE_MINUTES",
        &mut s.access_token_expire_minutes,
    );
    env.read(
        "REFRESH_TOKEN_EXPIRE_DAYS",
        &mut s.refresh_token_expire_days,
    );
    if s.access_token_expire_minutes <= 0 || s.refresh_token_expire_days <= 0 {
        env.error("token lifetimes must be positive");
    }
    s.initial_admin_email = env.get("INITIAL_ADMIN_EMAIL");
    s.initial_admin_password = env.get("INITIAL_ADMIN_PASSWORD");
    if s.initial_admin_email.is_some() != s.initial_admin_password.is_some() {
        env.error("INITIAL_ADMIN_EMAIL and INITIAL_ADMIN_PASSWORD must be set together");
    }
    env.flag("ITEM_WRITES_REQUIRE_OPS", &mut s.item_writes_require_ops);
}
