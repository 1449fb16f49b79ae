//! Where and how HTTP is served: the listen address, the connection limits
//! (`HTTP_*`, read by [`HttpSettings`]), the body limit, and which browser
//! origins may call the API.

use super::HttpSettings;
use super::{AppEnv, Settings, env::Env};

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.read("HOST", &mut s.host);
    env.read("PORT", &mut s.port);
    env.read("MAX_BODY_BYTES", &mut s.max_body_bytes);
    s.http = env.nested(HttpSettings::from_lookup);
    if let Some(origins) = env.get("CORS_ORIGINS") {
        s.cors_origins = origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
    }
    for origin in &s.cors_origins {
        let valid = origin == "*"
            || ((origin.starts_with("http://") || origin.starts_with("https://"))
                && axum::http::HeaderValue::from_str(origin).is_ok());
        if !valid {
            env.error(format!(
                "CORS_ORIGINS: {origin:?} is not an origin (https://host[:port]) or *"
            ));
        }
    }
    if s.app_env == AppEnv::Production && s.cors_origins.iter().any(|o| o == "*") {
        env.error("CORS_ORIGINS=*: production needs the list of origins allowed");
    }
}
