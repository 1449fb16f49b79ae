//! Rate limits: in-process, per route, per user, shared through Redis, and
//! surviving Redis going away.

use std::time::Duration;

use recengine::config::RateSpec;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, expect_error};

fn per(count: u32, secs: u64) -> RateSpec {
    RateSpec {
        count,
        period: Duration::from_secs(secs),
    }
}

fn header(res: &reqwest::Response, name: &str) -> u64 {
    res.headers()[name].to_str().unwrap().parse().unwrap()
}

async fn anon_get(app: &TestApp, path: &str) -> reqwest::Response {
    app.request(Method::GET, path, None).send().await.unwrap()
}

#[tokio::test]
async fn the_limit_trips_at_the_count_and_resets() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rate_limit_enabled = true;
        s.rate_limit_default = per(3, 1);
    })
    .await;
    let now = chrono::Utc::now().timestamp() as u64;
    for expected_remaining in [2, 1, 0] {
        let res = anon_get(&app, "/api/v1/items/").await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "x-ratelimit-limit"), 3);
        assert_eq!(header(&res, "x-ratelimit-remaining"), expected_remaining);
        let reset = header(&res, "x-ratelimit-reset");
        assert!(
            reset >= now && reset <= now + 3,
            "reset {reset} vs now {now}"
        );
    }
    let refused = anon_get(&app, "/api/v1/items/popular/top").await;
    assert_eq!(refused.status(), 429);
    assert!(header(&refused, "retry-after") >= 1);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), 0);
    let detail = expect_error(refused, 429).await;
    assert!(detail.contains("3/second"), "{detail}");
    // Probes are never limited.
    assert_eq!(anon_get(&app, "/health").await.status(), 200);
    // A second later the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = anon_get(&app, "/api/v1/items/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ratelimit-remaining"), 2);
}

#[tokio::test]
async fn authenticated_callers_have_their_own_budget() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rate_limit_enabled = true;
        s.rate_limit_default = per(2, 60);
        s.rate_limit_authenticated = per(5, 60);
    })
    .await;
    for _ in 0..2 {
        assert_eq!(anon_get(&app, "/api/v1/items/").await.status(), 200);
    }
    assert_eq!(anon_get(&app, "/api/v1/items/").await.status(), 429);
    // Same IP, but signed in: limited per user, at the authenticated rate.
    for n in 0..5 {
        let res = app.get("/api/v1/items/").await;
        assert_eq!(res.status(), 200, "authenticated request {n}");
        assert_eq!(header(&res, "x-ratelimit-limit"), 5);
    }
    assert_eq!(app.get("/api/v1/items/").await.status(), 429);
}

#[tokio::test]
async fn login_has_a_tighter_per_route_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rate_limit_enabled = true;
        s.rate_limit_overrides = vec![("/api/v1/auth/login".into(), per(3, 60))];
    })
    .await;
    // The harness logged in once already.
    let attempt = || {
        app.request(Method::POST, "/api/v1/auth/login", None)
            .json(&json!({"email": "root@example.com", "password": "guess-guess-guess"}))
            .send()
    };
    assert_eq!(attempt().await.unwrap().status(), 401);
    assert_eq!(attempt().await.unwrap().status(), 401);
    let res = attempt().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(header(&res, "x-ratelimit-limit"), 3);
    // Other routes keep the default budget.
    assert_eq!(anon_get(&app, "/api/v1/items/").await.status(), 200);
}

#[tokio::test]
async fn forwarded_for_is_trusted_only_when_configured() {
    for (hops, second_client_allowed) in [(1, true), (0, false)] {
        let app = TestApp::spawn_with(Backend::Sqlite, |s| {
            s.rate_limit_enabled = true;
            s.rate_limit_default = per(1, 60);
            s.forwarded_for_hops = hops;
        })
        .await;
        let from = |ip: &'static str| {
            app.request(Method::GET, "/api/v1/items/", None)
                .header("x-forwarded-for", ip)
                .send()
        };
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 200);
        assert_eq!(from("203.0.113.1").await.unwrap().status(), 429);
        let other = from("203.0.113.2").await.unwrap().status();
        assert_eq!(other == 200, second_client_allowed, "hops={hops}");
    }
}

/// Two replicas sharing the machine's Redis (under a prefix of their own)
/// with anonymous callers limited to `spec`.
async fn replicas_sharing_redis(spec: RateSpec) -> (TestApp, TestApp) {
    let prefix = format!("recengine-test-{}:", uuid::Uuid::new_v4().simple());
    let configure = |s: &mut recengine::config::Settings| {
        s.rate_limit_enabled = true;
        s.rate_limit_default = spec;
        s.redis_url = Some("redis://127.0.0.1:6379/0".into());
        s.redis_key_prefix = prefix.clone();
    };
    let a = TestApp::spawn_with(Backend::Sqlite, configure).await;
    let b = TestApp::spawn_with(Backend::Sqlite, configure).await;
    let health: Value = a.get("/health").await.json().await.unwrap();
    assert_eq!(health["redis"], "connected", "Redis must run for this test");
    (a, b)
}

#[tokio::test]
async fn replicas_sharing_redis_share_one_limit() {
    let (a, b) = replicas_sharing_redis(per(4, 60)).await;
    let mut remaining = Vec::new();
    for app in [&a, &b, &a, &b] {
        let res = anon_get(app, "/api/v1/items/").await;
        assert_eq!(res.status(), 200);
        remaining.push(header(&res, "x-ratelimit-remaining"));
    }
    assert_eq!(
        remaining,
        vec![3, 2, 1, 0],
        "one budget across both replicas"
    );
    assert_eq!(anon_get(&a, "/api/v1/items/").await.status(), 429);
    assert_eq!(anon_get(&b, "/api/v1/items/").await.status(), 429);
    assert!(!a.state.limiter.is_falling_back());
}

#[tokio::test]
async fn a_busy_client_costs_redis_a_round_trip_per_lease_not_per_request() {
    let (a, b) = replicas_sharing_redis(per(60_000, 3_600_000)).await;
    let pool = a.state.redis.clone().unwrap();
    // Warm the route's own caches first: only the limiter is counted.
    anon_get(&a, "/api/v1/items/").await;
    let before = pool.commands();
    let mut remaining = Vec::new();
    for _ in 0..100 {
        let res = anon_get(&a, "/api/v1/items/").await;
        assert_eq!(res.status(), 200);
        remaining.push(header(&res, "x-ratelimit-remaining"));
    }
    let round_trips = pool.commands() - before;
    assert!(
        round_trips <= 12,
        "100 requests took {round_trips} Redis round trips; leases should need about 7"
    );
    // A slow refill (one unit a minute) so the count reads plainly: each
    // answer reports the bucket as if its units had been reserved one by
    // one, whatever the replica holds in its lease.
    assert_eq!(remaining.first(), Some(&(60_000 - 2)));
    assert_eq!(remaining.last(), Some(&(60_000 - 101)));
    // The other replica draws on the same bucket: what A reserved is gone.
    let res = anon_get(&b, "/api/v1/items/").await;
    assert_eq!(res.status(), 200);
    assert!(
        header(&res, "x-ratelimit-remaining") < 60_000 - 100,
        "B sees A's use"
    );
}

#[tokio::test]
async fn redis_down_still_serves_with_local_limits() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rate_limit_enabled = true;
        s.rate_limit_default = per(2, 60);
        // Nothing listens on port 1.
        s.redis_url = Some("redis://127.0.0.1:1/0".into());
    })
    .await;
    let res = anon_get(&app, "/api/v1/items/").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ratelimit-remaining"), 1);
    assert!(app.state.limiter.is_falling_back());
    assert_eq!(anon_get(&app, "/api/v1/items/").await.status(), 200);
    assert_eq!(anon_get(&app, "/api/v1/items/").await.status(), 429);
    let res = anon_get(&app, "/health").await;
    assert_eq!(res.status(), 200);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["redis"], "disconnected");
}
