//! Rate limiting: per client IP for anonymous callers, per user for
//! authenticated ones, tighter per-route limits where abuse is cheap for an
//! attacker and costly for us (login, registration, token refresh).
//!
//! One algorithm (GCRA, [`gcra`]) with two stores: in-process, or Redis when
//! `REDIS_URL` is set so every replica shares one budget. If Redis stops
//! answering, checks fall back to the in-process store — the service keeps
//! serving, with per-replica limits — and the switch is logged both ways.
//!
//! Why not `tower_governor`: its in-process GCRA cannot share state through
//! Redis, and two algorithms would give two meanings to the same headers.

pub mod gcra;
pub mod lease;
pub mod redis_store;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    AppState, auth::identify::TokenIdentity, config::RateSpec, error::AppError,
    redis_pool::RedisPool,
};
use gcra::{Decision, LocalStore};

pub struct RateLimiter {
    enabled: bool,
    anonymous: RateSpec,
    authenticated: RateSpec,
    /// Route template -> its own limit, keyed per client IP.
    overrides: Vec<(String, RateSpec)>,
    forwarded_for_hops: usize,
    local: LocalStore,
    redis: Option<Arc<RedisPool>>,
    leases: lease::Leases,
    /// True while Redis is failing and the local store stands in.
    falling_back: AtomicBool,
}

/// Routes no limiter should ever refuse: probes and the docs.
const EXEMPT: &[&str] = &[
    "/health",
    "/api/v1/health",
    "/ready",
    "/metrics",
    "/openapi.json",
];

impl RateLimiter {
    pub fn new(settings: &crate::config::Settings, redis: Option<Arc<RedisPool>>) -> Self {
        Self {
            enabled: settings.rate_limit_enabled,
            anonymous: settings.rate_limit_default,
            authenticated: settings.rate_limit_authenticated,
            overrides: settings.rate_limit_overrides.clone(),
            forwarded_for_hops: settings.forwarded_for_hops,
            local: LocalStore::default(),
            redis,
            leases: lease::Leases::default(),
            falling_back: AtomicBool::new(false),
        }
    }

    /// Whether limits are currently per replica because Redis is failing.
    pub fn is_falling_back(&self) -> bool {
        self.falling_back.load(Ordering::Relaxed)
    }

    async fn check(&self, key: &str, spec: RateSpec) -> Decision {
        if let Some(redis) = &self.redis {
            let started = Instant::now();
            if let Some(decision) = self.leases.take(key, spec, started) {
                return decision;
            }
            let wanted = self.leases.wanted(key);
            if let Some(outcome) = redis_store::reserve(redis, key, spec, wanted).await {
                if self.falling_back.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis is back: rate limits are shared again");
                }
                return match outcome {
                    Ok(grant) => self.leases.keep(key, spec, grant, started),
                    Err(refused) => refused,
                };
            }
            if !self.falling_back.swap(true, Ordering::Relaxed) {
                self.leases.clear();
                tracing::warn!("Redis unavailable: rate limits fall back to in-process");
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.local.check(key, spec, now)
    }

    /// The client's address: the socket peer, or — only when the operator
    /// says how many proxies to trust — the address that many hops from the
    /// right of `X-Forwarded-For` (the left part is client-controlled).
    fn client_ip(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
        if self.forwarded_for_hops > 0 {
            let hops: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            let trusted = hops
                .len()
                .checked_sub(self.forwarded_for_hops)
                .and_then(|i| hops[i].parse::<IpAddr>().ok());
            if let Some(ip) = trusted {
                return ip.to_string();
            }
        }
        peer.map(|p| p.ip().to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert(LIMIT.clone(), HeaderValue::from(d.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(d.remaining));
    // Unix time in seconds, as slowapi (the Python service's limiter) sent.
    headers.insert(RESET.clone(), HeaderValue::from(d.reset_at.ceil() as u64));
}

/// Middleware (runs after routing, so it sees the route template).
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limiter = &state.limiter;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    if !limiter.enabled || route.as_deref().is_some_and(|r| EXEMPT.contains(&r)) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = limiter.client_ip(req.headers(), peer);
    let overridden = route.as_deref().and_then(|r| {
        limiter
            .overrides
            .iter()
            .find(|(template, _)| template == r)
            .map(|(t, s)| (t.clone(), *s))
    });
    let (key, spec) = match (overridden, req.extensions().get::<TokenIdentity>()) {
        (Some((template, spec)), _) => (format!("route:{template}:ip:{ip}"), spec),
        (None, Some(TokenIdentity(user))) => (format!("user:{user}"), limiter.authenticated),
        (None, None) => (format!("ip:{ip}"), limiter.anonymous),
    };
    let decision = limiter.check(&key, spec).await;
    if !decision.allowed {
        let mut response = AppError::TooManyRequests {
            detail: format!("Rate limit exceeded: {spec}"),
            retry_after_secs: decision.retry_after.ceil() as u64,
        }
        .into_response();
        set_headers(response.headers_mut(), &decision);
        return response;
    }
    let mut response = next.run(req).await;
    set_headers(response.headers_mut(), &decision);
    response
}
