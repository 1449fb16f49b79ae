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

/// A folder in MovieLens layout, streamed in: a repeated (user, item) line
/// counts once (the first wins, as a re-import would skip it), a user named
/// only in the ratings gets an account, the per-item counts match a
/// recount, and every index and constraint the load dropped is back.
async fn a_movielens_folder_streams_in_and_a_repeated_line_counts_once(backend: Backend) {
    let app = TestApp::spawn_without_admin(backend, |_| {}).await;
    let db = &app.state.db;
    let dir = std::env::temp_dir().join(format!("ml-stream-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("u.data"),
        "1\t1\t5\t874965758\n1\t2\t3\t874965759\n2\t1\t4\t876893171\n\n\
         1\t1\t1\t880000000\n3\t3\t2\t881000000\n",
    )
    .unwrap();
    let flags = |genre: usize| {
        (0..19)
            .map(|g| if g == genre { "1" } else { "0" })
            .collect::<Vec<_>>()
            .join("|")
    };
    std::fs::write(
        dir.join("u.item"),
        format!(
            "1|One (1990)|01-Jan-1990||u|{}\n2|Two (1991)|01-Jan-1991||u|{}\n3|Three (1992)|01-Jan-1992||u|{}\n",
            flags(1),
            flags(5),
            flags(8)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("u.user"),
        "1|24|M|technician|85711\n2|53|F|other|94043\n",
    )
    .unwrap();

    let report = data::movielens::import_dir(db, &dir).await.unwrap();
    assert_eq!((report.users, report.items, report.interactions), (3, 3, 4));
    let (rating,): (Option<f64>,) =
        sqlx::query_as("SELECT rating FROM interactions WHERE user_id = 1 AND item_id = 1")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(rating, Some(5.0), "the first of the repeated lines is kept");
    let (kept, counted) = item_stats_and_recount(db).await;
    assert_eq!(kept.len(), 3);
    assert_eq!(kept, counted);
    let one: Value = app.get("/api/v1/items/1").await.json().await.unwrap();
    assert_eq!(one["popularity_score"], 2.0);
    let (username,): (String,) = sqlx::query_as("SELECT username FROM users WHERE id = 3")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(username, "ml_user_3", "named only in the ratings");
    assert_back_after_a_load(db).await;

    let again = data::movielens::import_dir(db, &dir).await.unwrap();
    assert_eq!((again.users, again.items, again.interactions), (0, 0, 0));

    // A rating that is not a number is refused with its line, and nothing
    // of that file is written.
    std::fs::write(
        dir.join("u.data"),
        "1\t3\t4\t874965758\n2\t2\tNaN\t874965758\n",
    )
    .unwrap();
    let err = data::movielens::import_dir(db, &dir).await.unwrap_err();
    assert!(format!("{err:#}").contains("line 2"), "{err:#}");
    assert_eq!(store::interactions::count(db).await.unwrap(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}
both_backends!(a_movielens_folder_streams_in_and_a_repeated_line_counts_once);

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

/// The per-item counts the database keeps, as a sorted list, and the same
/// counted from the interactions themselves: they must agree.
async fn item_stats_and_recount(
    db: &store::Db,
) -> (Vec<(i64, String, i64, i64)>, Vec<(i64, String, i64, i64)>) {
    let kept: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT item_id, interaction_type, interactions, rated FROM item_stats \
         ORDER BY item_id, interaction_type",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let counted: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT item_id, interaction_type, COUNT(*), COUNT(rating) FROM interactions \
         GROUP BY item_id, interaction_type ORDER BY item_id, interaction_type",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    (kept, counted)
}

/// What a load into an empty table drops and rebuilds (secondary indexes,
/// the counting triggers, PostgreSQL's foreign keys and the source key's
/// uniqueness) is all there again.
async fn assert_back_after_a_load(db: &store::Db) {
    let names_sql = match db.dialect {
        store::Dialect::Sqlite => {
            "SELECT name FROM sqlite_master WHERE tbl_name = 'interactions' \
             AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY name"
        }
        store::Dialect::Postgres => {
            "SELECT CAST(indexname AS TEXT) FROM pg_indexes WHERE tablename = 'interactions' \
             UNION ALL SELECT DISTINCT CAST(trigger_name AS TEXT) \
             FROM information_schema.triggers WHERE event_object_table = 'interactions' \
             ORDER BY 1"
        }
    };
    let names: Vec<String> = sqlx::query_as::<_, (String,)>(names_sql)
        .fetch_all(&db.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(n,)| n)
        .collect();
    for expected in [
        "interactions_item",
        "interactions_time",
        "interactions_user",
        "item_stats_delete",
        "item_stats_insert",
        "item_stats_update",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    if db.dialect == store::Dialect::Postgres {
        let constraints: Vec<(String,)> = sqlx::query_as(
            "SELECT CAST(conname AS TEXT) FROM pg_constraint \
             WHERE conrelid = 'interactions'::regclass ORDER BY 1",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let constraints: Vec<&str> = constraints.iter().map(|(n,)| n.as_str()).collect();
        assert_eq!(
            constraints,
            [
                "interactions_item_id_fkey",
                "interactions_pkey",
                "interactions_source_key_key",
                "interactions_user_id_fkey"
            ]
        );
    }
}

/// A user's history, as the feature store reads it, comes from the
/// `interactions_user` index without visiting the table: at 10M
/// interactions a table row per interaction was most of an uncached
/// recommendation's cost.
async fn assert_history_reads_the_index_alone(db: &store::Db, user: i64) {
    let sql = store::feature_rows::user_interactions_sql(db.dialect, 1);
    let plan: Vec<String> = match db.dialect {
        store::Dialect::Sqlite => {
            sqlx::query_as::<_, (i64, i64, i64, String)>(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(user)
                .fetch_all(&db.pool)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, _, _, detail)| detail)
                .collect()
        }
        store::Dialect::Postgres => sqlx::query_as::<_, (String,)>(&format!("EXPLAIN {sql}"))
            .bind(user)
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(line,)| line)
            .collect(),
    };
    let plan = plan.join("\n");
    let index_alone = match db.dialect {
        store::Dialect::Sqlite => "USING COVERING INDEX interactions_user",
        store::Dialect::Postgres => "Index Only Scan using interactions_user",
    };
    assert!(plan.contains(index_alone), "{plan}");
}

async fn synthetic_import_is_seeded_skewed_and_servable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.state.db;
    let spec = data::synthetic::Spec {
        users: 400,
        items: 600,
        interactions: 30_000,
        seed: 7,
    };
    let report = data::synthetic::import(db, spec).await.unwrap();
    assert_eq!(
        (report.users, report.items, report.interactions),
        (400, 600, 30_000)
    );
    let err = data::synthetic::import(db, spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds synthetic data"), "{err}");
    assert_eq!(store::interactions::count(db).await.unwrap(), 30_000);

    // The counts kept by the database match a recount, after a bulk insert
    // and after a user (and by cascade their interactions) is deleted.
    let (kept, counted) = item_stats_and_recount(db).await;
    assert!(!kept.is_empty());
    assert_eq!(kept, counted);
    let users = app.get_json("/api/v1/users/?limit=1000").await;
    let users = users.as_array().unwrap();
    let synthetic: Vec<&Value> = users.iter().filter(|u| u["role"] == "user").collect();
    assert_eq!(synthetic.len(), 400);
    assert_back_after_a_load(db).await;
    assert_history_reads_the_index_alone(db, synthetic[3]["id"].as_i64().unwrap()).await;
    if db.dialect == store::Dialect::Postgres {
        // The planner has statistics on what the load filled (autovacuum
        // may be off, as on the test server).
        let analysed: Vec<(String,)> = sqlx::query_as(
            "SELECT CAST(relname AS TEXT) FROM pg_stat_user_tables \
             WHERE last_analyze IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let analysed: Vec<&str> = analysed.iter().map(|(n,)| n.as_str()).collect();
        for table in ["interactions", "item_stats", "items", "users"] {
            assert!(
                analysed.contains(&table),
                "{table} not analysed: {analysed:?}"
            );
        }
    }
    let first = synthetic[2]["id"].as_i64().unwrap();
    assert_eq!(app.interact(first, 1, "purchase").await.status(), 201);
    let (kept, counted) = item_stats_and_recount(db).await;
    assert_eq!(kept, counted);
    let gone = synthetic[0]["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/users/{gone}")).await.status(),
        204
    );
    let (kept, counted) = item_stats_and_recount(db).await;
    assert_eq!(kept, counted);

    // Power-law popularity: the top tenth of the items takes over a third of
    // the interactions (a uniform draw would give a tenth).
    let mut per_item: Vec<i64> = sqlx::query_as::<_, (i64,)>(
        "SELECT CAST(SUM(interactions) AS BIGINT) FROM item_stats GROUP BY item_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(n,)| n)
    .collect();
    per_item.sort_unstable_by(|a, b| b.cmp(a));
    let total: i64 = per_item.iter().sum();
    let head: i64 = per_item[..60].iter().sum();
    assert!(head * 3 > total, "top 60 items: {head} of {total}");
    // Log-normal activity: the busiest user has several times the median.
    let mut per_user: Vec<i64> =
        sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM interactions GROUP BY user_id")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|(n,)| n)
            .collect();
    per_user.sort_unstable();
    let median = per_user[per_user.len() / 2];
    assert!(*per_user.last().unwrap() > 4 * median, "{per_user:?}");

    // Items carry what the rules read; the catalogue serves, rules on.
    let items = app.get_json("/api/v1/items/?limit=1000").await;
    let items = items.as_array().unwrap();
    let count =
        |pred: &dyn Fn(&Value) -> bool| items.iter().filter(|i| pred(&i["features"])).count();
    assert!(count(&|f| f["in_stock"] == false) > 0);
    assert!(count(&|f| f["is_promotional"] == true) > 0);
    assert!(count(&|f| f["min_age"].as_i64() == Some(18)) > 0);
    assert!(count(&|f| f["brand"].is_string()) == items.len());
    app.retrain().await;
    let user = synthetic[1]["id"].as_i64().unwrap();
    let recs: Value = app
        .get_json(&format!("/api/v1/recommendations/user/{user}?top_n=10"))
        .await;
    assert_eq!(
        recs["recommendations"].as_array().unwrap().len(),
        10,
        "{recs}"
    );
}
both_backends!(synthetic_import_is_seeded_skewed_and_servable);

/// The same seed and sizes give the same data, whatever the database.
#[tokio::test]
async fn synthetic_import_is_reproducible_from_its_seed() {
    let spec = data::synthetic::Spec {
        users: 50,
        items: 80,
        interactions: 2_000,
        seed: 11,
    };
    let mut fingerprints = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = TestApp::spawn_without_admin(backend, |_| {}).await;
        data::synthetic::import(&app.state.db, spec).await.unwrap();
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT user_id, item_id, interaction_type FROM interactions \
             ORDER BY user_id, item_id, interaction_type",
        )
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
        let items: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, category, features FROM items ORDER BY id")
                .fetch_all(&app.state.db.pool)
                .await
                .unwrap();
        // Promotion end dates are relative to today: compare the rest.
        let items: Vec<(i64, String, String)> = items
            .into_iter()
            .map(|(id, c, f)| {
                let mut f: Value = serde_json::from_str(&f).unwrap();
                f.as_object_mut().unwrap().remove("promo_end_date");
                (id, c, f.to_string())
            })
            .collect();
        fingerprints.push((rows, items));
    }
    assert_eq!(fingerprints[0].0.len(), 2_000);
    assert_eq!(fingerprints[0], fingerprints[1]);
}
