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
