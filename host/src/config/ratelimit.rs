//! Rate limits (`RATE_LIMIT_*`) and how far to trust `X-Forwarded-For`
//! when keying them per client IP.

use std::{fmt, str::FromStr, time::Duration};

use super::{Settings, env::Env};

/// "100/minute": at most `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    pub count: u32,
    pub period: Duration,
}

impl RateSpec {
    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            period: Duration::from_secs(60),
        }
    }
}

impl FromStr for RateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("expected COUNT/UNIT such as 100/minute, got {s:?}"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{count:?} is not a whole number"))?;
        if count == 0 {
            return Err("the count must be at least 1".into());
        }
        let secs = match unit.trim().to_ascii_lowercase().as_str() {
            "second" | "sec" | "s" => 1,
            "minute" | "min" | "m" => 60,
            "hour" | "h" => 3600,
            "day" | "d" => 86_400,
            other => {
                return Err(format!(
                    "unknown unit {other:?} (second, minute, hour, day)"
                ));
            }
        };
        Ok(Self {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

/// The routes `RATE_LIMIT_AUTH` covers: cheap to call, expensive to serve
/// (argon2), and the target of credential stuffing.
pub const AUTH_ROUTES: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
];

/// `RATE_LIMIT_AUTH` when unset.
pub(super) const DEFAULT_AUTH_LIMIT: RateSpec = RateSpec::per_minute(10);

/// Every route of [`AUTH_ROUTES`] at `limit`.
pub(super) fn auth_overrides(limit: RateSpec) -> Vec<(String, RateSpec)> {
    AUTH_ROUTES.iter().map(|r| (r.to_string(), limit)).collect()
}

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.flag("RATE_LIMIT_ENABLED", &mut s.rate_limit_enabled);
    env.read("RATE_LIMIT_DEFAULT", &mut s.rate_limit_default);
    env.read("RATE_LIMIT_AUTHENTICATED", &mut s.rate_limit_authenticated);
    let mut auth_limit = DEFAULT_AUTH_LIMIT;
    env.read("RATE_LIMIT_AUTH", &mut auth_limit);
    s.rate_limit_overrides = auth_overrides(auth_limit);
    for entry in env
        .get("RATE_LIMIT_ROUTES")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        match entry.split_once('=') {
            Some((route, spec)) if route.starts_with('/') => match spec.parse::<RateSpec>() {
                Ok(spec) => {
                    let route = route.trim();
                    s.rate_limit_overrides.retain(|(r, _)| r != route);
                    s.rate_limit_overrides.push((route.to_string(), spec));
                }
                Err(e) => env.error(format!("RATE_LIMIT_ROUTES {entry:?}: {e}")),
            },
            _ => env.error(format!(
                "RATE_LIMIT_ROUTES {entry:?}: expected /route/template=COUNT/UNIT"
            )),
        }
    }
    env.read("FORWARDED_FOR_HOPS", &mut s.forwarded_for_hops);
}
