//! Scheduled jobs through the API: each job does its work, failures retry
//! and end in FAILURE, interrupted runs are marked, schedules run once per
//! fleet, and the retrain after enough interactions.

use std::{cell::RefCell, fmt, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_EMAIL, Backend, TestApp, eventually, eventually_some, expect_error, fresh_database_url,
    holds_throughout,
    metrics::{scrape, value},
};

/// Triggers `job` and returns the run id (the 202 contract).
async fn trigger(app: &TestApp, job: &str) -> i64 {
    let res = app
        .post(&format!("/api/v1/jobs/{job}/trigger"), &json!({}))
        .await;
    assert_eq!(res.status(), 202, "trigger {job}");
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["job"], job);
    let id = body["run_id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/jobs/runs/{id}"));
    assert_eq!(body["status_url"], location);
    id
}

/// Polls a run until it finishes; returns it and every status seen.
async fn wait_for(app: &TestApp, id: i64) -> (Value, Vec<String>) {
    let seen = RefCell::new(Vec::<String>::new());
    let what = fmt::from_fn(|f| write!(f, "run {id} finishes; statuses seen: {:?}", seen.borrow()));
    let run = eventually_some(Duration::from_secs(30), what, async || {
        let run = app.get_json(&format!("/api/v1/jobs/runs/{id}")).await;
        let status = run["status"].as_str().unwrap().to_string();
        let finished = status == "SUCCESS" || status == "FAILURE";
        let mut seen = seen.borrow_mut();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        finished.then_some(run)
    })
    .await;
    (run, seen.into_inner())
}

async fn run_to_end(app: &TestApp, job: &str) -> Value {
    let id = trigger(app, job).await;
    let (run, _) = wait_for(app, id).await;
    assert_eq!(run["status"], "SUCCESS", "{job}: {run}");
    run
}

/// Users, a catalogue of 30 items, and some interactions.
async fn small_world(app: &TestApp) -> (Vec<i64>, Vec<i64>) {
    let mut items = Vec::new();
    for i in 0..30 {
        let category = ["books", "music", "film"][i % 3];
        items.push(
            app.create_item(&format!("item {i}"), category).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let mut users = Vec::new();
    for u in 0..4 {
        let id = app.create_user(&format!("reader{u}"), json!({})).await["id"]
            .as_i64()
            .unwrap();
        for k in 0..5 {
            let item = items[(u * 3 + k) % items.len()];
            assert_eq!(app.interact(id, item, "purchase").await.status(), 201);
        }
        users.push(id);
    }
    (users, items)
}

async fn retrain_changes_the_model(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.get_json("/api/v1/models").await["current"].clone();
    assert_eq!(before["interactions"], 0);
    small_world(&app).await;
    let run = run_to_end(&app, "retrain_collaborative_model").await;
    let after = app.get_json("/api/v1/models").await["current"].clone();
    assert!(after["version"].as_u64() > before["version"].as_u64());
    assert_eq!(after["interactions"], 20);
    assert_eq!(after["items"], 30);
    assert_eq!(run["result"]["version"], after["version"]);
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["requested_by"], ADMIN_EMAIL);
    assert_eq!(run["attempts"], 1);
    assert!(run["duration_ms"].as_i64().unwrap() >= 0);
    assert!(run["replica"].as_str().is_some_and(|r| !r.is_empty()));
}
crate::both_backends!(retrain_changes_the_model);

async fn batch_recommendations_exist_for_every_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (users, _) = small_world(&app).await;
    let missing = app
        .get(&format!("/api/v1/recommendations/user/{}/batch", users[0]))
        .await;
    expect_error(missing, 404).await;

    let run = run_to_end(&app, "generate_batch_recommendations").await;
    // Item features came first, as a chained run of its own.
    let chained = app
        .get_json("/api/v1/jobs/runs?job=update_item_features&trigger=chain")
        .await;
    assert_eq!(chained.as_array().unwrap().len(), 1, "{chained}");
    assert_eq!(chained[0]["parent_id"], run["id"]);
    assert_eq!(chained[0]["status"], "SUCCESS");
    // The admin account counts as a user too.
    assert_eq!(run["result"]["users"], users.len() + 1);
    assert_eq!(run["result"]["top_n"], 20);

    for &user in &users {
        let stored = app
            .get_json(&format!("/api/v1/recommendations/user/{user}/batch"))
            .await;
        let list = stored["recommendations"].as_array().unwrap();
        assert_eq!(list.len(), 20, "user {user}");
        assert_eq!(stored["run_id"], run["id"]);
        // Ranked, and never an item the user already has.
        let mine: Vec<i64> = app
            .get_json(&format!("/api/v1/interactions/user/{user}"))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item_id"].as_i64().unwrap())
            .collect();
        for (k, rec) in list.iter().enumerate() {
            assert_eq!(rec["rank"], k + 1);
            assert!(!mine.contains(&rec["item_id"].as_i64().unwrap()));
        }
    }
    // A second run replaces the lists; the chain is fresh and not re-run.
    let again = run_to_end(&app, "generate_batch_recommendations").await;
    let chained = app
        .get_json("/api/v1/jobs/runs?job=update_item_features&trigger=chain")
        .await;
    assert_eq!(chained.as_array().unwrap().len(), 1);
    let stored = app
        .get_json(&format!("/api/v1/recommendations/user/{}/batch", users[0]))
        .await;
    assert_eq!(
        stored["run_id"], again["id"],
        "the second run replaced the lists"
    );
    assert_eq!(
        recengine::store::batch_recommendations::count(&app.state.db)
            .await
            .unwrap(),
        again["result"]["users"].as_i64().unwrap()
    );
}
crate::both_backends!(batch_recommendations_exist_for_every_user);

#[tokio::test]
async fn item_features_rescore_popularity() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, items) = small_world(&app).await;
    let run = run_to_end(&app, "update_item_features").await;
    assert!(run["result"]["items_rescored"].as_u64().unwrap() > 0);
    // Scaled by the most popular item (which scores 1); an item nobody
    // touched keeps the catalogue's 0.
    let scores: Vec<f64> = popularity_scores(&app, &items).await;
    assert!(scores.iter().any(|&s| (s - 1.0).abs() < 1e-9), "{scores:?}");
    assert!(scores.iter().all(|&s| (0.0..=1.0).contains(&s)));
    assert_eq!(scores[29], 0.0);
}

async fn popularity_scores(app: &TestApp, items: &[i64]) -> Vec<f64> {
    let mut out = Vec::new();
    for id in items {
        let item = app.get_json(&format!("/api/v1/items/{id}")).await;
        out.push(item["popularity_score"].as_f64().unwrap());
    }
    out
}

#[tokio::test]
async fn cleanup_removes_expired_cache_entries_and_tokens() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.cache_ttl = Duration::from_millis(300);
    })
    .await;
    let (users, _) = small_world(&app).await;
    for user in &users {
        let res = app
            .get(&format!("/api/v1/recommendations/user/{user}"))
            .await;
        assert_eq!(res.status(), 200);
    }
    assert_eq!(app.state.rec_cache.local_len(), users.len());
    // A refresh token that expired long ago.
    app.login("reader0@example.com", "a-long-password").await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = 0 WHERE user_id = $1")
        .bind(users[0])
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    // Past the 300 ms cache TTL: every entry has expired.
    tokio::time::sleep(Duration::from_millis(400)).await;

    let run = run_to_end(&app, "cleanup_old_cache").await;
    let caches = &run["result"]["caches"];
    assert_eq!(caches["recommendations"]["purged"], users.len());
    assert_eq!(caches["recommendations"]["remaining"], 0);
    assert_eq!(run["result"]["refresh_tokens_deleted"], 1);
    assert_eq!(app.state.rec_cache.local_len(), 0);
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1")
        .bind(users[0])
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn update_metrics_sets_the_gauges_to_the_counts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    small_world(&app).await;
    // The gauges are per process and other tests' apps set them too: the
    // run's own counts must be right, and /metrics must show them unless
    // another app wrote in between (then run it again).
    let samples = eventually_some(
        Duration::from_secs(5),
        "/metrics shows this app's counts",
        async || {
            let run = run_to_end(&app, "update_metrics").await;
            assert_eq!(run["result"]["active_users"], 5);
            assert_eq!(run["result"]["active_items"], 30);
            assert_eq!(run["result"]["total_interactions"], 20);
            let samples = scrape(&app).await;
            (value(&samples, "active_users") == 5.0
                && value(&samples, "active_items") == 30.0
                && value(&samples, "total_interactions") == 20.0)
                .then_some(samples)
        },
    )
    .await;
    let ok = value(
        &samples,
        r#"job_runs_total{job="update_metrics",status="SUCCESS"}"#,
    );
    assert!(ok >= 1.0);
}

async fn a_failing_job_retries_then_fails(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.jobs.max_attempts = 3;
        s.jobs.retry_backoff = Duration::from_millis(400);
    })
    .await;
    small_world(&app).await;
    // The job's table is gone: every attempt fails for real.
    sqlx::query("DROP TABLE batch_recommendations")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let before = scrape(&app).await;
    let id = trigger(&app, "generate_batch_recommendations").await;
    let (run, seen) = wait_for(&app, id).await;
    assert_eq!(run["status"], "FAILURE", "{run}");
    assert_eq!(run["attempts"], 3);
    let error = run["error"].as_str().unwrap();
    assert!(error.starts_with("attempt 3 of 3"), "{error}");
    assert!(error.contains("batch_recommendations"), "{error}");
    assert!(seen.contains(&"RETRY".to_string()), "{seen:?}");
    assert!(run["result"].is_null());
    let after = scrape(&app).await;
    let retries = r#"job_runs_total{job="generate_batch_recommendations",status="RETRY"}"#;
    let failures = r#"job_runs_total{job="generate_batch_recommendations",status="FAILURE"}"#;
    assert!(value(&after, retries) - value(&before, retries) >= 2.0);
    assert!(value(&after, failures) - value(&before, failures) >= 1.0);
    // The history finds it by status.
    let failed = app
        .get_json("/api/v1/jobs/runs?status=FAILURE&job=generate_batch_recommendations")
        .await;
    assert_eq!(failed[0]["id"], id);
}
crate::both_backends!(a_failing_job_retries_then_fails);

#[tokio::test]
async fn the_job_api_checks_roles_names_and_filters() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let jobs = app.get_json("/api/v1/jobs").await;
    let names: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cleanup_old_cache",
            "retrain_collaborative_model",
            "update_item_features",
            "generate_batch_recommendations",
            "update_metrics"
        ]
    );
    assert_eq!(jobs[1]["schedule"], "0 0 2 * * *");
    // Tests run with the scheduler off: no next run.
    assert!(jobs[1]["next_run"].is_null());
    assert_eq!(jobs[3]["requires"], json!(["update_item_features"]));
    assert_eq!(jobs[4]["scope"], "replica");

    expect_error(
        app.post("/api/v1/jobs/rm_rf/trigger", &json!({})).await,
        404,
    )
    .await;
    expect_error(app.get("/api/v1/jobs/runs/999999").await, 404).await;
    expect_error(app.get("/api/v1/jobs/runs/abc").await, 422).await;
    expect_error(app.get("/api/v1/jobs/runs?status=DONE").await, 422).await;
    expect_error(app.get("/api/v1/jobs/runs?limit=0").await, 422).await;
    expect_error(app.get("/api/v1/jobs/runs?job=nope").await, 404).await;

    let anonymous = app
        .request(
            reqwest::Method::POST,
            "/api/v1/jobs/update_metrics/trigger",
            None,
        )
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401).await;
    app.create_user("plain", json!({})).await;
    let user = app.login("plain@example.com", "a-long-password").await;
    let token = user["access_token"].as_str().unwrap();
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/jobs/update_metrics/trigger"),
        (reqwest::Method::GET, "/api/v1/jobs"),
        (reqwest::Method::GET, "/api/v1/jobs/runs"),
    ] {
        let res = app.request(method, path, Some(token)).send().await.unwrap();
        expect_error(res, 403).await;
    }

    let first = run_to_end(&app, "update_metrics").await;
    let second = run_to_end(&app, "cleanup_old_cache").await;
    let all = app.get_json("/api/v1/jobs/runs").await;
    assert_eq!(all[0]["id"], second["id"], "newest first");
    assert_eq!(all[1]["id"], first["id"]);
    let page = app
        .get_json(&format!("/api/v1/jobs/runs?before_id={}", second["id"]))
        .await;
    assert_eq!(page[0]["id"], first["id"]);
    let manual = app.get_json("/api/v1/jobs/runs?trigger=schedule").await;
    assert!(manual.as_array().unwrap().is_empty());
    let listed = app.get_json("/api/v1/jobs").await;
    assert_eq!(listed[4]["last_run"]["id"], first["id"]);
    assert!(listed[4]["last_success_at"].is_string());
}

/// A run left RUNNING by a process that died is marked when a replica
/// starts (its heartbeat is stale).
#[tokio::test]
async fn interrupted_runs_are_marked_on_restart() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jobs.stale_after = Duration::from_secs(2);
    })
    .await;
    sqlx::query(
        "INSERT INTO job_runs (job, trigger, status, attempts, max_attempts, owner, created_at, \
                               started_at, heartbeat_at) \
         VALUES ('retrain_collaborative_model', 'schedule', 'RUNNING', 1, 3, 'gone-1234', 1, 1, 1)",
    )
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    app.state.start_jobs().await.unwrap();
    let run = eventually_some(
        Duration::from_secs(5),
        "the interrupted run is marked",
        async || {
            let runs = app.get_json("/api/v1/jobs/runs?status=FAILURE").await;
            runs.as_array().unwrap().first().cloned()
        },
    )
    .await;
    assert_eq!(run["replica"], "gone-1234");
    assert!(run["error"].as_str().unwrap().starts_with("interrupted"));
    assert!(run["finished_at"].is_string());
}

/// Two replicas on one PostgreSQL, firing every second: each slot of a
/// fleet job runs once; a per-replica job runs on both; a retrain on one
/// reloads the other's model.
#[tokio::test]
async fn two_replicas_run_a_scheduled_job_once() {
    let database = fresh_database_url(Backend::Postgres).await;
    let configure = |db: String| {
        move |s: &mut recengine::config::Settings| {
            s.database_url = db;
            s.jobs.scheduler_enabled = true;
            for job in recengine::jobs::JobName::ALL {
                s.jobs.set_schedule(job, None);
            }
            s.jobs.set_schedule(
                recengine::jobs::JobName::CleanupOldCache,
                Some("* * * * * *"),
            );
            s.jobs
                .set_schedule(recengine::jobs::JobName::UpdateMetrics, Some("* * * * * *"));
        }
    };
    let a = TestApp::spawn_with(Backend::Postgres, configure(database.clone())).await;
    let mut b = TestApp::spawn_without_admin(Backend::Postgres, configure(database.clone())).await;
    b.make_admin_token_only().await;
    a.state.start_jobs().await.unwrap();
    b.state.start_jobs().await.unwrap();
    // Four or five one-second slots, each fired on both replicas.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    a.state.jobs.shutdown(&a.state).await;
    b.state.jobs.shutdown(&b.state).await;

    let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT job, dedupe_key, owner, status FROM job_runs WHERE trigger = 'schedule'",
    )
    .fetch_all(&a.state.db.pool)
    .await
    .unwrap();
    let cleanup: Vec<_> = rows.iter().filter(|r| r.0 == "cleanup_old_cache").collect();
    assert!(cleanup.len() >= 3, "{rows:?}");
    // The schedule second of each run, whatever else its key carries.
    let mut slots: Vec<&str> = cleanup
        .iter()
        .map(|r| &r.1.as_deref().unwrap()[..19])
        .collect();
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), cleanup.len(), "a slot ran twice: {cleanup:?}");
    assert!(cleanup.iter().all(|r| r.3 == "SUCCESS" || r.3 == "FAILURE"));
    let mut metric_owners: Vec<&str> = rows
        .iter()
        .filter(|r| r.0 == "update_metrics")
        .map(|r| r.2.as_str())
        .collect();
    metric_owners.sort();
    metric_owners.dedup();
    assert_eq!(
        metric_owners.len(),
        2,
        "update_metrics runs on every replica"
    );

    // A retrain run on A is followed by B.
    small_world(&a).await;
    let before = b.state.recommender.snapshot().report.interactions;
    run_to_end(&a, "retrain_collaborative_model").await;
    eventually(
        Duration::from_secs(5),
        "replica B reloads the model after A's retrain",
        async || b.state.recommender.snapshot().report.interactions == 20,
    )
    .await;
    assert_eq!(before, 0);
}

#[tokio::test]
async fn enough_new_interactions_trigger_a_retrain() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jobs.retrain_after_interactions = 5;
        s.jobs.retrain_check = Duration::from_millis(200);
    })
    .await;
    app.state.start_jobs().await.unwrap();
    let user = app.create_user("eager", json!({})).await["id"]
        .as_i64()
        .unwrap();
    let item = app.create_item("thing", "books").await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..4 {
        assert_eq!(app.interact(user, item, "view").await.status(), 201);
    }
    // Three checks' worth (one every 200 ms).
    holds_throughout(
        Duration::from_millis(600),
        "no retrain after 4 new interactions (4 < 5)",
        async || {
            let runs = app.get_json("/api/v1/jobs/runs?trigger=threshold").await;
            runs.as_array().unwrap().is_empty()
        },
    )
    .await;
    assert_eq!(app.interact(user, item, "view").await.status(), 201);
    let runs = eventually_some(
        Duration::from_secs(5),
        "a retrain after 5 new interactions succeeds",
        async || {
            let runs = app.get_json("/api/v1/jobs/runs?trigger=threshold").await;
            (runs[0]["status"] == "SUCCESS").then_some(runs)
        },
    )
    .await;
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["result"]["interactions"], 5);
}

/// A clean shutdown ends this replica's unfinished runs at once, marked
/// interrupted, instead of leaving them to the stale sweep.
#[tokio::test]
async fn a_shutdown_marks_its_unfinished_runs() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jobs.retry_backoff = Duration::from_secs(30);
    })
    .await;
    sqlx::query("DROP TABLE batch_recommendations")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let id = trigger(&app, "generate_batch_recommendations").await;
    eventually(
        Duration::from_secs(10),
        "the run waits out its backoff after the first failed attempt",
        async || app.get_json(&format!("/api/v1/jobs/runs/{id}")).await["status"] == "RETRY",
    )
    .await;
    // Meanwhile a second trigger of the same job is refused, naming the run.
    let again = app
        .post(
            "/api/v1/jobs/generate_batch_recommendations/trigger",
            &json!({}),
        )
        .await;
    let detail = expect_error(again, 409).await;
    assert!(detail.contains(&format!("run {id}")), "{detail}");
    app.state.jobs.shutdown(&app.state).await;
    let run = app.get_json(&format!("/api/v1/jobs/runs/{id}")).await;
    assert_eq!(run["status"], "FAILURE", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("interrupted: the service shut down"),
        "{run}"
    );
}
