//! Two replicas sharing a database and Redis: what one changes, the other
//! serves within the documented bounds (README, "Two-level caches").

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, eventually};

/// Two replicas on one SQLite file and one Redis key prefix, with an L1
/// TTL of `l1_ttl`.
async fn two_replicas(l1_ttl: Duration) -> (TestApp, TestApp, String) {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4());
    let database = crate::helpers::fresh_database_url(Backend::Sqlite).await;
    let shared = |s: &mut recengine::config::Settings| {
        s.redis_url = Some("redis://127.0.0.1:6379/0".into());
        s.redis_key_prefix = prefix.clone();
        s.database_url = database.clone();
        s.cache.l1_ttl = l1_ttl;
    };
    let a = TestApp::spawn_with(Backend::Sqlite, shared).await;
    let mut b = TestApp::spawn_without_admin(Backend::Sqlite, shared).await;
    b.admin_token = a.admin_token.clone();
    (a, b, prefix)
}

/// The rules that ran on a list (a disabled rule is traced as skipped).
fn traced_rules(body: &Value) -> Vec<String> {
    body["rule_trace"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] != "skipped")
        .map(|t| t["rule"].as_str().unwrap().to_string())
        .collect()
}

/// A rule switched off on A is off on B too (within the settings sync
/// interval), and B's lists stop applying it: neither B's registry nor a
/// list B cached meanwhile keeps the old rules.
#[tokio::test]
async fn a_rule_change_on_one_replica_reaches_the_other() {
    let (a, b, _) = two_replicas(Duration::from_secs(600)).await;
    let user = a.create_user("fleet", json!({})).await["id"]
        .as_i64()
        .unwrap();
    a.create_item("Lamp", "home").await;
    a.create_item("Rug", "home").await;
    // Items are candidates from the next retrain on; each replica trains its own.
    for app in [&a, &b] {
        let res = app.post("/api/v1/models/retrain", &json!({})).await;
        assert_eq!(res.status(), 200);
    }
    let list = format!("/api/v1/recommendations/user/{user}?top_n=5&explain=true");
    let before = b.get_json(&list).await;
    assert!(traced_rules(&before).contains(&"diversity".to_string()));

    let res = a
        .put("/api/v1/rules/diversity", &json!({"enabled": false}))
        .await;
    assert_eq!(res.status(), 200);
    // B computes and caches a list right away, possibly with the old rules.
    b.get_json(&list).await;
    let bound = recengine::rules::admin::SETTINGS_SYNC_INTERVAL + Duration::from_secs(2);
    eventually(bound, "B's registry has the rule off", || async {
        b.get_json("/api/v1/rules/diversity").await["enabled"] == false
    })
    .await;
    eventually(bound, "B's lists no longer run the rule", || async {
        !traced_rules(&b.get_json(&list).await).contains(&"diversity".to_string())
    })
    .await;
    assert!(
        !traced_rules(&a.get_json(&list).await).contains(&"diversity".to_string()),
        "A serves no list with the old rules either"
    );
}

/// The backstop: a replica that misses an invalidation message serves the
/// stale entry from its L1 for at most `CACHE_L1_TTL`, then reads the
/// shared level again. The miss is made by doing what an invalidation does
/// to the database and Redis, without its message.
#[tokio::test]
async fn a_missed_invalidation_is_stale_for_at_most_the_l1_ttl() {
    let l1_ttl = Duration::from_secs(1);
    let (a, b, prefix) = two_replicas(l1_ttl).await;
    let id = a.create_item("Kettle", "kitchen").await["id"]
        .as_i64()
        .unwrap();
    let item = format!("/api/v1/features/items/{id}");
    assert_eq!(b.get_json(&item).await["item"]["title"], "Kettle");

    sqlx::query("UPDATE items SET title = 'Teapot' WHERE id = $1")
        .bind(id)
        .execute(&a.state.db.pool)
        .await
        .unwrap();
    let mut redis = redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}cache:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    assert_eq!(
        b.get_json(&item).await["item"]["title"],
        "Kettle",
        "B's L1 still holds the entry"
    );
    let took = eventually(
        l1_ttl * 3,
        "B reads the change after its L1 TTL",
        || async { b.get_json(&item).await["item"]["title"] == "Teapot" },
    )
    .await;
    assert!(took <= l1_ttl + Duration::from_millis(500), "{took:?}");
}

/// The models one replica serves, as `GET /api/v1/models` reports them:
/// (version, source, trained_by), and this replica's own name.
async fn models_of(app: &TestApp) -> ((u64, String, String), String) {
    let status = app.get_json("/api/v1/models").await;
    let current = &status["current"];
    (
        (
            current["version"].as_u64().unwrap(),
            current["source"].as_str().unwrap().to_string(),
            current["trained_by"].as_str().unwrap().to_string(),
        ),
        status["replica"].as_str().unwrap().to_string(),
    )
}

/// A replica started on `database` the way `serve` starts one: listening
/// at once, its models loaded (or trained) in the background.
async fn start_replica(
    database: &str,
    admin_token: &str,
    configure: impl FnOnce(&mut recengine::config::Settings),
) -> TestApp {
    let mut settings = recengine::config::Settings::for_tests(database);
    settings.database_max_connections = 5;
    configure(&mut settings);
    let state = recengine::AppState::open(settings).await.unwrap();
    let mut app = TestApp::serve(state).await;
    app.admin_token = admin_token.to_string();
    app.state.start_models().await.unwrap();
    app
}

/// Two replicas on one PostgreSQL: the one that trains stores its models,
/// the other loads them instead of training and serves the same version
/// and the same lists; a retrain reaches the other as it is announced; a
/// restarted replica is ready from the stored snapshot without training;
/// one facing a corrupted snapshot, or configured otherwise, trains its own.
#[tokio::test]
async fn one_replica_trains_and_the_others_serve_its_stored_models() {
    let database = crate::helpers::fresh_database_url(Backend::Postgres).await;
    // Only the announcement can bring B the retrain in time.
    let poll =
        |s: &mut recengine::config::Settings| s.model_snapshot_poll = Duration::from_secs(3600);
    let a = TestApp::spawn_with(Backend::Postgres, |s| {
        s.database_url = database.clone();
        poll(s);
    })
    .await;
    let user = a.create_user("shopper", json!({})).await["id"]
        .as_i64()
        .unwrap();
    let mut items = Vec::new();
    for (title, category) in [
        ("Lamp", "home"),
        ("Rug", "home"),
        ("Kettle", "kitchen"),
        ("Teapot", "kitchen"),
        ("Desk", "office"),
    ] {
        items.push(a.create_item(title, category).await["id"].as_i64().unwrap());
    }
    for other in 0..4 {
        let id = a.create_user(&format!("other{other}"), json!({})).await["id"]
            .as_i64()
            .unwrap();
        for &item in &items[other % 2..other % 2 + 3] {
            assert_eq!(a.interact(id, item, "purchase").await.status(), 201);
        }
    }
    assert_eq!(a.interact(user, items[0], "view").await.status(), 201);
    a.retrain().await;
    let (trained, a_name) = models_of(&a).await;
    assert_eq!(trained.1, "trained");
    assert_eq!(trained.2, a_name);

    let b = start_replica(&database, &a.admin_token, poll).await;
    let (loaded, b_name) = models_of(&b).await;
    assert_ne!(a_name, b_name);
    assert_eq!(
        loaded,
        (trained.0, "snapshot".to_string(), a_name.clone()),
        "B serves A's models without training"
    );
    let list = format!("/api/v1/recommendations/user/{user}?top_n=4");
    let ids = |v: &Value| -> Vec<i64> {
        v["recommendations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["item_id"].as_i64().unwrap())
            .collect()
    };
    let from_a = a.get_json(&list).await;
    let from_b = b.get_json(&list).await;
    assert_eq!(from_a["model_version"], from_b["model_version"]);
    assert_eq!(ids(&from_a), ids(&from_b));
    assert!(!ids(&from_a).is_empty());

    // A retrains: B hears of it and loads the new version.
    a.retrain().await;
    let (retrained, _) = models_of(&a).await;
    assert!(retrained.0 > trained.0);
    eventually(Duration::from_secs(10), "B loads A's retrain", || async {
        models_of(&b).await.0 == (retrained.0, "snapshot".to_string(), a_name.clone())
    })
    .await;

    // A restart is ready from the stored snapshot.
    let started = std::time::Instant::now();
    let c = start_replica(&database, &a.admin_token, poll).await;
    assert_eq!(
        models_of(&c).await.0,
        (retrained.0, "snapshot".to_string(), a_name.clone())
    );
    let ready = c.get("/ready").await;
    assert_eq!(ready.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A corrupted snapshot fails its checksum: a replica trains instead.
    sqlx::query("UPDATE model_snapshot_chunks SET data = $1")
        .bind(vec![0u8; 64])
        .execute(&a.state.db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE model_snapshots SET bytes = 64")
        .execute(&a.state.db.pool)
        .await
        .unwrap();
    let e = start_replica(&database, &a.admin_token, poll).await;
    let ((_, source, by), e_name) = models_of(&e).await;
    assert_eq!((source.as_str(), by), ("trained", e_name));
    assert_eq!(e.get("/ready").await.status(), 200);

    // Other settings: trains its own rather than serve models it would
    // not have trained.
    let d = start_replica(&database, &a.admin_token, |s| {
        poll(s);
        s.hybrid_alpha = 0.3;
    })
    .await;
    let ((_, source, by), d_name) = models_of(&d).await;
    assert_eq!((source.as_str(), by), ("trained", d_name));
}
