//! Redis and the database going away under a running service, and what
//! callers may send to grow its memory. The outages are real: the service
//! talks to the machine's Redis and PostgreSQL through a TCP relay that the
//! test cuts (every open connection closed, new ones refused) and restores.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch};

use crate::helpers::{Backend, TestApp, eventually, expect_error, fresh_database_url, ids_of};

/// A TCP relay to `upstream` that can be cut like a failed server.
struct Relay {
    addr: std::net::SocketAddr,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut: open connections watch it and close.
    cuts: watch::Sender<u64>,
}

impl Relay {
    async fn start(upstream: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0u64);
        let (is_cut, cut_signal) = (cut.clone(), cuts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if is_cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut_seen = cut_signal.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_seen.changed() => {}
                    }
                });
            }
        });
        Self { addr, cut, cuts }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Ten items in two categories, a few other shoppers, a trained model, and
/// a user with a taste for the first two items.
async fn small_shop(app: &TestApp) -> (i64, Vec<i64>) {
    let mut items = Vec::new();
    for i in 0..10 {
        let category = ["books", "music"][i % 2];
        let item = app.create_item(&format!("item {i}"), category).await;
        items.push(item["id"].as_i64().unwrap());
    }
    for other in 0..4 {
        let id = app.create_user(&format!("other{other}"), json!({})).await["id"]
            .as_i64()
            .unwrap();
        for item in items.iter().skip(other).take(6) {
            assert_eq!(app.interact(id, *item, "like").await.status(), 201);
        }
    }
    let user = app.create_user("shopper", json!({})).await["id"]
        .as_i64()
        .unwrap();
    for item in &items[..2] {
        assert_eq!(app.interact(user, *item, "view").await.status(), 201);
    }
    let res = app.post("/api/v1/models/retrain", &json!({})).await;
    assert_eq!(res.status(), 200);
    (user, items)
}

/// Two replicas on one fresh database of `backend`, sharing the machine's
/// Redis through a relay the test can cut (`l1_ttl`: their
/// `CACHE_L1_TTL`, when given), with the small shop: the relay, both apps,
/// the shopper and the items.
async fn two_replicas(
    backend: Backend,
    l1_ttl: Option<Duration>,
) -> (Relay, TestApp, TestApp, i64, Vec<i64>) {
    let relay = Relay::start("127.0.0.1:6379").await;
    let prefix = format!("test-{}:", uuid::Uuid::new_v4());
    let database = fresh_database_url(backend).await;
    let redis_url = format!("redis://{}/0", relay.addr);
    let shared = |s: &mut recengine::config::Settings| {
        s.redis_url = Some(redis_url.clone());
        s.redis_key_prefix = prefix.clone();
        s.database_url = database.clone();
        s.redis.probe_interval = Duration::from_millis(100);
        if let Some(ttl) = l1_ttl {
            s.cache.l1_ttl = ttl;
        }
    };
    let a = TestApp::spawn_with(backend, shared).await;
    let (user, items) = small_shop(&a).await;
    let mut b = TestApp::spawn_without_admin(backend, shared).await;
    b.admin_token = a.admin_token.clone();
    (relay, a, b, user, items)
}

/// Redis stops while two replicas serve: both keep answering from their
/// own memory (cached answers included), `/health` says `degraded`, and a
/// purchase recorded during the outage is never recommended once Redis is
/// back, although Redis still holds lists cached before it.
#[tokio::test]
async fn a_redis_outage_costs_little_and_loses_no_invalidation() {
    let (relay, a, b, user, items) = two_replicas(Backend::Sqlite, None).await;
    let list = format!("/api/v1/recommendations/user/{user}?top_n=5");

    // Both replicas have the list cached in Redis before the outage.
    let before = a.get_json(&list).await;
    assert_eq!(before["cached"], false);
    assert_eq!(b.get_json(&list).await["cached"], true);
    let bought = ids_of(&before)[0];
    assert_ne!(bought, items[0]);

    relay.cut();
    // The first request to notice pays at most one timeout; the breaker
    // then skips Redis, and each replica serves from its own memory.
    for app in [&a, &b] {
        assert_eq!(app.get(&list).await.status(), 200);
        eventually(Duration::from_secs(2), "health degraded", || async {
            app.get_json("/health").await["status"] == "degraded"
        })
        .await;
        assert!(!app.state.redis.as_ref().unwrap().available());
        let again = app.get_json(&list).await;
        assert_eq!(again["cached"], true, "served from the in-process fallback");
    }
    assert_eq!(
        a.state.redis.as_ref().unwrap().trips(),
        1,
        "one trip per outage"
    );

    // A purchase while Redis is away: stored, and invalidated locally.
    assert_eq!(a.interact(user, bought, "purchase").await.status(), 201);
    assert!(!ids_of(&a.get_json(&list).await).contains(&bought));

    relay.restore();
    for app in [&a, &b] {
        let took = eventually(Duration::from_secs(2), "health healthy again", || async {
            app.get_json("/health").await["status"] == "healthy"
        })
        .await;
        assert!(took < Duration::from_secs(2));
    }
    // Redis still holds the pre-outage list with the item in it; the
    // generation bumped on recovery hides it (B may read the list A has
    // just cached again).
    for app in [&a, &b] {
        let after = app.get_json(&list).await;
        assert!(!ids_of(&after).contains(&bought), "{after}");
        let features = app
            .get_json(&format!("/api/v1/features/users/{user}"))
            .await;
        assert!(
            features["purchased_item_ids"]
                .as_array()
                .unwrap()
                .contains(&json!(bought)),
            "{features}"
        );
    }
}

/// On PostgreSQL, a Redis outage need not cost recomputation: the
/// replicas carry invalidations over the database instead, so each keeps
/// what it caches during the outage for the cache's whole TTL (not
/// `CACHE_L1_TTL`), and a purchase on one replica still clears the other's
/// list at once.
#[tokio::test]
async fn without_redis_invalidations_travel_over_postgres() {
    let (relay, a, b, user, _) =
        two_replicas(Backend::Postgres, Some(Duration::from_millis(300))).await;
    let list = format!("/api/v1/recommendations/user/{user}?top_n=5");

    relay.cut();
    for app in [&a, &b] {
        assert_eq!(app.get(&list).await.status(), 200);
        eventually(Duration::from_secs(2), "health degraded", || async {
            app.get_json("/health").await["status"] == "degraded"
        })
        .await;
    }
    // Cached during the outage, and still cached well past CACHE_L1_TTL.
    let first = b.get_json(&list).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let later = b.get_json(&list).await;
    assert_eq!(later["cached"], true, "kept past CACHE_L1_TTL: {first}");
    let bought = ids_of(&later)[0];
    // A purchase on A reaches B's cache over the database.
    assert_eq!(a.interact(user, bought, "purchase").await.status(), 201);
    eventually(
        Duration::from_secs(2),
        "B drops the list A invalidated",
        || async { !ids_of(&b.get_json(&list).await).contains(&bought) },
    )
    .await;
    relay.restore();
}

/// The database goes away: the first request that needs it waits at most
/// the acquire timeout, the ones after it are refused at once (503 with a
/// detail) while cached answers keep being served; it comes back by itself.
#[tokio::test]
async fn a_database_outage_fails_fast_and_recovers() {
    let relay = Relay::start("127.0.0.1:5432").await;
    let direct = fresh_database_url(Backend::Postgres).await;
    let through_relay = direct.replacen("127.0.0.1:5432", &relay.addr.to_string(), 1);
    assert_ne!(
        direct, through_relay,
        "the test database is on 127.0.0.1:5432"
    );
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.database_url = through_relay.clone();
        s.database_acquire_timeout = Duration::from_secs(3);
    })
    .await;
    let (user, _) = small_shop(&app).await;
    let list = format!("/api/v1/recommendations/user/{user}?top_n=5");
    assert_eq!(app.get_json(&list).await["cached"], false);

    relay.cut();
    let first = Instant::now();
    let res = app.get("/api/v1/items/?limit=5").await;
    expect_error(res, 503).await;
    assert!(
        first.elapsed() < Duration::from_secs(5),
        "bounded by the acquire timeout"
    );
    assert!(app.state.db.pool.is_down());
    for _ in 0..5 {
        let started = Instant::now();
        let detail = expect_error(app.get("/api/v1/items/?limit=5").await, 503).await;
        assert_eq!(detail, "Database unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused without waiting for the 3 s acquire timeout: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(app.get("/health").await.status(), 503);
    // Anonymous: a signed-in caller's token is checked against the database.
    let cached: Value = reqwest::get(app.url(&list))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cached["cached"], true, "cached answers are still served");

    relay.restore();
    eventually(Duration::from_secs(5), "database back", || async {
        app.get("/api/v1/items/?limit=5").await.status() == 200
    })
    .await;
    assert!(!app.state.db.pool.is_down());
}

/// Anonymous callers cannot grow the caches: unique contexts are digested
/// into fixed-size keys and the caches hold at most `CACHE_MAX_MB`;
/// oversized contexts are refused with the limit named.
#[tokio::test]
async fn callers_cannot_grow_the_caches() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.cache.max_bytes = 256 << 10;
    })
    .await;
    let (user, _) = small_shop(&app).await;
    let anonymous = reqwest::Client::new();
    let big_value = "x".repeat(250);
    for i in 0..400 {
        let extra: serde_json::Map<String, Value> = (0..30)
            .map(|k| (format!("k{k}"), json!(format!("{i}-{big_value}"))))
            .collect();
        let res = anonymous
            .post(app.url("/api/v1/recommendations/"))
            .json(&json!({"user_id": user, "top_n": 5, "context": {"extra": extra}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let held = app.state.rec_cache.local_bytes();
    assert!(held <= 256 << 10, "{held} bytes held");
    assert!(held > 0);

    let too_many: serde_json::Map<String, Value> =
        (0..33).map(|k| (format!("k{k}"), json!("v"))).collect();
    for (context, names) in [
        (json!({"extra": too_many}), "at most 32"),
        (json!({"extra": {"k": "x".repeat(257)}}), "context.extra.k"),
        (json!({"device": "d".repeat(65)}), "context.device"),
    ] {
        let res = anonymous
            .post(app.url("/api/v1/recommendations/"))
            .json(&json!({"user_id": user, "context": context}))
            .send()
            .await
            .unwrap();
        let detail = expect_error(res, 422).await;
        assert!(detail.contains(names), "{detail}");
    }
    let long_device = "d".repeat(59_000);
    let res = anonymous
        .get(app.url(&format!(
            "/api/v1/recommendations/user/{user}?device={long_device}"
        )))
        .send()
        .await
        .unwrap();
    assert!(expect_error(res, 422).await.contains("context.device"));

    // Arbitrary trending windows share a few buckets.
    for window in 3601..3801 {
        let res = anonymous
            .get(app.url(&format!(
                "/api/v1/recommendations/trending?time_window={window}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.json::<Value>().await.unwrap()["time_window_seconds"],
            7200
        );
    }
    assert_eq!(app.state.trending_cache.local_len(), 1);
}
