//! MovieLens import and the demo catalogue.

use std::path::PathBuf;

use recengine::{data, store};
use serde_json::Value;

use crate::{
    both_backends,
    helpers::{Backend, TestApp},
};

fn ml100k_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ml-100k")
}

async fn importing_ml100k_twice_is_idempotent(backend: Backend) {
    let mut app = TestApp::spawn_without_admin(backend, |_| {}).await;
    let db = &app.state.db;
    let first = data::movielens::import_dir(db, &ml100k_dir())
        .await
        .unwrap();
    assert_eq!(
        (first.users, first.items, first.interactions),
        (943, 1682, 100_000)
    );
    let second = data::movielens::import_dir(db, &ml100k_dir())
        .await
        .unwrap();
    assert_eq!((second.users, second.items, second.interactions), (0, 0, 0));
    assert_eq!(store::users::count(db).await.unwrap(), 943);
    assert_eq!(store::items::count(db).await.unwrap(), 1682);
    assert_eq!(store::interactions::count(db).await.unwrap(), 100_000);

    // Accounts made after the import get ids past the data set's.
    app.make_admin().await;
    let db = &app.state.db;
    assert_eq!(store::users::count(db).await.unwrap(), 944);

    // The data set's ids are addressable through the API.
    let toy_story: Value = app.get("/api/v1/items/1").await.json().await.unwrap();
    assert_eq!(toy_story["title"], "Toy Story");
    assert_eq!(toy_story["category"], "Animation");
    assert_eq!(
        toy_story["popularity_score"], 452.0,
        "Toy Story has 452 ratings"
    );
    let stats: Value = app
        .get("/api/v1/interactions/stats/user/196")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_interactions"], 39);
    let user: Value = app.get("/api/v1/users/1").await.json().await.unwrap();
    assert_eq!(user["preferences"]["age"], 24);
    assert_eq!(user["preferences"]["country"], "US");

    // New rows get ids past the imported ones.
    let created = app.create_item("Brand new", "Drama").await;
    assert_eq!(created["id"], 1683);
    let user = app.create_user("newcomer", serde_json::json!({})).await;
    assert_eq!(user["id"], 945);
}
both_backends!(importing_ml100k_twice_is_idempotent);

async fn demo_catalogue_gives_every_rule_something_to_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.state.db;
    assert!(data::demo::seed_if_empty(db).await.unwrap());
    assert!(!data::demo::seed_if_empty(db).await.unwrap(), "seeds once");
    let users: Vec<Value> = app
        .get("/api/v1/users/?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let items: Vec<Value> = app
        .get("/api/v1/items/?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    // The demo's users seed beside the harness's admin.
    let users: Vec<Value> = users.into_iter().filter(|u| u["role"] == "user").collect();
    assert_eq!(users.len(), data::demo::DEMO_USERS);
    assert_eq!(items.len(), data::demo::DEMO_ITEMS);
    let minors = users
        .iter()
        .filter(|u| u["preferences"]["age"].as_i64().unwrap() < 18)
        .count();
    assert!(minors > 0 && minors < users.len() / 2, "{minors} minors");
    let countries: std::collections::HashSet<&str> = users
        .iter()
        .map(|u| u["preferences"]["country"].as_str().unwrap())
        .collect();
    assert!(countries.len() >= 4);
    let count =
        |pred: &dyn Fn(&Value) -> bool| items.iter().filter(|i| pred(&i["features"])).count();
    assert!(count(&|f| f["in_stock"] == false) > 0, "out of stock");
    assert!(count(&|f| f["is_promotional"] == true) > 0, "promotions");
    assert!(
        count(&|f| f["min_age"].as_i64() == Some(18)) > 0,
        "adult items"
    );
    assert!(
        count(&|f| f["allowed_countries"].is_array()) > 0,
        "allow lists"
    );
    assert!(
        count(&|f| f["blocked_countries"].is_array()) > 0,
        "block lists"
    );
    assert!(count(&|f| f["origin_country"].is_string()) == items.len());
    let now = chrono::Utc::now();
    let new_items = items
        .iter()
        .filter(|i| {
            let created: chrono::DateTime<chrono::Utc> =
                i["created_at"].as_str().unwrap().parse().unwrap();
            now - created < chrono::Duration::days(7)
        })
        .count();
    assert!(
        new_items > 0 && new_items < items.len() / 2,
        "{new_items} new"
    );
    let purchases: i64 = {
        let mut n = 0;
        for u in users.iter().take(20) {
            let s: Value = app
                .get(&format!("/api/v1/interactions/stats/user/{}", u["id"]))
                .await
                .json()
                .await
                .unwrap();
            n += s["interaction_types"]["purchase"].as_i64().unwrap_or(0);
        }
        n
    };
    assert!(purchases > 0);
}
both_backends!(demo_catalogue_gives_every_rule_something_to_do);

async fn import_refuses_to_reuse_ids_it_does_not_own(backend: Backend) {
    // The harness's admin holds user id 1.
    let app = TestApp::spawn(backend).await;
    let err = data::movielens::import_dir(&app.state.db, &ml100k_dir())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("user id 1 is already taken"), "{err}");
    assert_eq!(store::interactions::count(&app.state.db).await.unwrap(), 0);
    assert_eq!(store::users::count(&app.state.db).await.unwrap(), 1);
}
both_backends!(import_refuses_to_reuse_ids_it_does_not_own);

/// `recengine import movielens` with an initial admin configured: the data
/// set keeps its ids and the admin is created after it, able to sign in.
#[tokio::test]
async fn the_cli_imports_with_an_initial_admin_configured() {
    let database = crate::helpers::fresh_database_url(Backend::Sqlite).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recengine"))
        .args(["import", "movielens", ml100k_dir().to_str().unwrap()])
        .env("DATABASE_URL", &database)
        .env("INITIAL_ADMIN_EMAIL", "boss@example.com")
        .env("INITIAL_ADMIN_PASSWORD", "a-long-admin-password")
        .env("JOBS_ENABLED", "false")
        .env("LOG_LEVEL", "error")
        // No stray .env from the working directory or above.
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("imported 943 users, 1682 items"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let db = database.clone();
    let mut app = TestApp::spawn_without_admin(Backend::Sqlite, move |s| s.database_url = db).await;
    let pair = app.login("boss@example.com", "a-long-admin-password").await;
    app.admin_token = pair["access_token"].as_str().unwrap().to_string();
    let me: Value = app.get_json("/api/v1/auth/me").await;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["id"], 944, "after the data set's ids");
    let first: Value = app.get_json("/api/v1/users/1").await;
    assert_eq!(first["username"], "ml_user_1");
}
