//! The rule runtime through HTTP: the built-in rules on real requests, run
//! time changes, dry runs, hostile components, and Wasm-vs-native agreement.

use std::time::{Duration, Instant};

use recengine::rules::{pipeline, registry::FailurePolicy};
use recengine_rules_sdk::testing::{Item, RequestBuilder};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{Backend, TestApp, expect_error, ids_of, temp_dir, wasm},
};

const BUILTIN_ORDER: [&str; 9] = [
    "filter_out_of_stock",
    "filter_excluded",
    "filter_age_restricted",
    "filter_purchased",
    "filter_geo_restricted",
    "boost_preferences",
    "boost_promotional",
    "boost_new_items",
    "diversity",
];

async fn builtin_rules_are_listed_in_priority_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let list: Value = app.get("/api/v1/rules/").await.json().await.unwrap();
    let names: Vec<&str> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BUILTIN_ORDER);
    let age = &list["rules"][2];
    assert_eq!(age["kind"], "filter");
    assert_eq!(age["priority"], 95);
    assert_eq!(age["failure_policy"], "fail_closed");
    assert_eq!(age["config"]["allow_unknown_age"], true);
    assert_eq!(age["params"][0]["type"], "flag");
    assert_eq!(age["source"], "builtin");
    assert_eq!(age["digest"].as_str().unwrap().len(), 64);
    assert_eq!(age["contract"], "0.2");
    assert_eq!(
        age["inputs"],
        json!([
            {"scope": "item", "name": "min_age", "type": "number"},
            {"scope": "user", "name": "age", "type": "number"}
        ])
    );
    assert_eq!(list["rules"][8]["kind"], "rerank");
    assert_eq!(list["rules"][8]["config"]["max_per_category"], 3.0);
    // Users may not see or change rules.
    app.create_user("rita", json!({})).await;
    let token = app.login("rita@example.com", "a-long-password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    expect_error(
        app.request(Method::GET, "/api/v1/rules/", Some(&token))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    expect_error(
        app.request(Method::GET, "/api/v1/rules/", None)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    expect_error(
        app.request(Method::PUT, "/api/v1/rules/diversity", Some(&token))
            .json(&json!({"enabled": false}))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
}
both_backends!(builtin_rules_are_listed_in_priority_order);

/// A catalogue where each built-in rule has exactly one thing to do.
async fn rule_catalogue(app: &TestApp) -> (i64, Value) {
    let now = chrono::Utc::now();
    let mut ids = serde_json::Map::new();
    for (key, title, category, tags, features, popularity) in [
        (
            "plain",
            "Plain",
            "toys",
            json!([]),
            json!({"in_stock": true}),
            100.0,
        ),
        (
            "out_of_stock",
            "Gone",
            "toys",
            json!([]),
            json!({"in_stock": false}),
            99.0,
        ),
        (
            "adult",
            "Adult",
            "toys",
            json!([]),
            json!({"min_age": 18}),
            98.0,
        ),
        ("purchased", "Bought", "toys", json!([]), json!({}), 97.0),
        (
            "blocked",
            "Blocked in DE",
            "toys",
            json!([]),
            json!({"blocked_countries": ["DE"]}),
            96.0,
        ),
        (
            "us_only",
            "US only",
            "toys",
            json!([]),
            json!({"allowed_countries": ["US"]}),
            95.0,
        ),
        (
            "favourite",
            "Book",
            "books",
            json!(["scifi"]),
            json!({}),
            50.0,
        ),
        (
            "promo",
            "Deal",
            "garden",
            json!([]),
            json!({"is_promotional": true, "promo_end_date": (now + chrono::Duration::days(3)).to_rfc3339()}),
            60.0,
        ),
        (
            "old_promo",
            "Old deal",
            "garden",
            json!([]),
            json!({"is_promotional": true, "promo_end_date": "2020-01-01"}),
            59.0,
        ),
    ] {
        let id = app
            .add_item(json!({"title": title, "category": category, "tags": tags,
                             "features": features, "popularity_score": popularity}))
            .await;
        ids.insert(key.into(), json!(id));
    }
    let user = app
        .create_user(
            "teen",
            json!({"age": 15, "country": "DE", "favorite_categories": ["books"], "favorite_tags": []}),
        )
        .await;
    let uid = user["id"].as_i64().unwrap();
    let res = app
        .post(
            "/api/v1/interactions/",
            &json!({"user_id": uid, "item_id": ids["purchased"], "interaction_type": "purchase"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    // The models learn the new catalogue.
    app.retrain().await;
    (uid, Value::Object(ids))
}

async fn recommendations_pass_through_the_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (uid, ids) = rule_catalogue(&app).await;
    let id = |k: &str| ids[k].as_i64().unwrap();
    // exclude_interacted=false so the purchased item reaches the rules.
    let body: Value = app
        .get(&format!(
            "/api/v1/recommendations/user/{uid}?top_n=20&explain=true&exclude_interacted=false"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["rules_applied"], true);
    assert_eq!(body["algorithm"], "hybrid");
    let got = ids_of(&body);
    for gone in ["out_of_stock", "adult", "purchased", "blocked", "us_only"] {
        assert!(
            !got.contains(&id(gone)),
            "{gone} should be filtered: {got:?}"
        );
    }
    for kept in ["plain", "favourite", "promo", "old_promo"] {
        assert!(got.contains(&id(kept)), "{kept} should stay: {got:?}");
    }
    let trace = body["rule_trace"].as_array().unwrap();
    let step = |name: &str| trace.iter().find(|t| t["rule"] == name).unwrap().clone();
    assert_eq!(
        step("filter_out_of_stock")["dropped"],
        json!([id("out_of_stock")])
    );
    assert_eq!(
        step("filter_age_restricted")["dropped"],
        json!([id("adult")])
    );
    assert_eq!(
        step("filter_purchased")["dropped"],
        json!([id("purchased")])
    );
    assert_eq!(
        step("filter_geo_restricted")["dropped"],
        json!([id("blocked"), id("us_only")])
    );
    let boosted = step("boost_preferences")["boosted"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(boosted.len(), 1);
    assert_eq!(boosted[0]["item_id"], id("favourite"));
    let (before, after) = (
        boosted[0]["before"].as_f64().unwrap(),
        boosted[0]["after"].as_f64().unwrap(),
    );
    assert!((after / before - 1.4).abs() < 1e-9);
    let promo = step("boost_promotional")["boosted"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(promo.len(), 1, "the ended promotion is not boosted");
    assert_eq!(promo[0]["item_id"], id("promo"));
    // Every item is new (created just now).
    assert_eq!(
        step("boost_new_items")["boosted"].as_array().unwrap().len(),
        4
    );
    assert!(trace.iter().all(|t| t["status"] == "applied"), "{trace:?}");
    // Scores are sorted after the boosts; ranks count from 1.
    let recs = body["recommendations"].as_array().unwrap();
    let scores: Vec<f64> = recs.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(recs[0]["rank"], 1);

    // The request's country overrides the user's: in the US, the US-only
    // item is fine and the DE block does not apply.
    let body: Value = app
        .post(
            "/api/v1/recommendations/",
            &json!({"user_id": uid, "top_n": 20, "context": {"country": "US"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let got = ids_of(&body);
    assert!(got.contains(&id("us_only")) && got.contains(&id("blocked")));
    assert!(
        !got.contains(&id("purchased")),
        "excluded as interacted by default"
    );
    assert!(body.get("rule_trace").is_none(), "no trace unless asked");

    // Only some kinds.
    let body: Value = app
        .get(&format!(
            "/api/v1/recommendations/user/{uid}?top_n=20&rule_types=boost&exclude_interacted=false"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert!(ids_of(&body).contains(&id("out_of_stock")));

    // Unknown user, bad parameters.
    expect_error(app.get("/api/v1/recommendations/user/999999").await, 404).await;
    expect_error(
        app.get(&format!("/api/v1/recommendations/user/{uid}?top_n=0"))
            .await,
        422,
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/recommendations/user/{uid}?top_n=101"))
            .await,
        422,
    )
    .await;
    expect_error(
        app.get(&format!(
            "/api/v1/recommendations/user/{uid}?algorithm=magic"
        ))
        .await,
        422,
    )
    .await;
    expect_error(
        app.get(&format!(
            "/api/v1/recommendations/user/{uid}?rule_types=teleport"
        ))
        .await,
        422,
    )
    .await;
}
both_backends!(recommendations_pass_through_the_rules);

#[tokio::test]
async fn rules_can_be_switched_off_for_the_whole_service() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.enable_business_rules = false).await;
    let (uid, ids) = rule_catalogue(&app).await;
    let body: Value = app
        .get(&format!(
            "/api/v1/recommendations/user/{uid}?top_n=20&explain=true"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["rules_applied"], false);
    assert!(ids_of(&body).contains(&ids["out_of_stock"].as_i64().unwrap()));
}

async fn rules_change_at_run_time_and_survive_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (uid, ids) = rule_catalogue(&app).await;
    let gone = ids["out_of_stock"].as_i64().unwrap();
    let recommend = || async {
        let body: Value = app
            .get(&format!("/api/v1/recommendations/user/{uid}?top_n=20"))
            .await
            .json()
            .await
            .unwrap();
        ids_of(&body)
    };
    assert!(!recommend().await.contains(&gone));
    let res = app
        .put(
            "/api/v1/rules/filter_out_of_stock",
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        recommend().await.contains(&gone),
        "disabled rule no longer filters"
    );

    // Parameters: validated, and a refused change leaves the old value.
    let res = app
        .put(
            "/api/v1/rules/diversity",
            &json!({"config": {"max_per_category": 0}}),
        )
        .await;
    expect_error(res, 422).await;
    let res = app
        .put(
            "/api/v1/rules/diversity",
            &json!({"config": {"no_such_param": 1}}),
        )
        .await;
    expect_error(res, 422).await;
    let res = app
        .put(
            "/api/v1/rules/diversity",
            &json!({"config": {"max_per_category": 2}, "priority": 5}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let rule: Value = res.json().await.unwrap();
    assert_eq!(rule["config"]["max_per_category"], 2.0);
    assert_eq!(rule["priority"], 5);
    expect_error(
        app.put("/api/v1/rules/nope", &json!({"enabled": true}))
            .await,
        404,
    )
    .await;
    expect_error(
        app.put("/api/v1/rules/diversity", &json!({"priority": "high"}))
            .await,
        422,
    )
    .await;
    assert_eq!(
        app.delete("/api/v1/rules/boost_new_items").await.status(),
        204
    );
    expect_error(app.delete("/api/v1/rules/boost_new_items").await, 404).await;

    // A new process on the same database comes back with the changes.
    let restarted = recengine::AppState::build((*app.state.settings).clone())
        .await
        .unwrap();
    let (_, rules) = recengine::rules::admin::list(&restarted.rules);
    let find = |n: &str| rules.iter().find(|r| r.name == n);
    assert!(!find("filter_out_of_stock").unwrap().enabled);
    assert_eq!(find("diversity").unwrap().config["max_per_category"], 2.0);
    assert_eq!(find("diversity").unwrap().priority, 5);
    assert!(find("boost_new_items").is_none());
}
both_backends!(rules_change_at_run_time_and_survive_a_restart);

async fn dry_run_applies_rules_without_storing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "user": {"age": 16, "country": "FR", "favorite_categories": ["books"], "purchased": [3]},
        "context": {"device": "mobile"},
        "candidates": [
            {"item_id": 1, "score": 0.9, "category": "toys", "features": {"in_stock": false}},
            {"item_id": 2, "score": 0.5, "category": "books"},
            {"item_id": 3, "score": 0.8},
            {"item_id": 4, "score": 0.7, "features": {"min_age": 18}},
            {"item_id": 5, "score": 0.6, "features": {"allowed_countries": ["fr"]}}
        ]
    });
    let res = app.post("/api/v1/rules/dry-run", &body).await;
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let ids: Vec<i64> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 5], "books boosted above the FR-only item");
    assert!((out["results"][0]["score"].as_f64().unwrap() - 0.5 * 1.4 * 1.3).abs() < 1e-9);
    assert_eq!(out["trace"].as_array().unwrap().len(), 9);
    // Bad dry runs.
    expect_error(
        app.post(
            "/api/v1/rules/dry-run",
            &json!({"candidates": [{"item_id": 1, "score": -1}]}),
        )
        .await,
        422,
    )
    .await;
    expect_error(
        app.post(
            "/api/v1/rules/dry-run",
            &json!({"candidates": [{"item_id": 1, "score": 1}, {"item_id": 1, "score": 1}]}),
        )
        .await,
        422,
    )
    .await;
    expect_error(
        app.post("/api/v1/rules/dry-run", &json!({"candidates": "all"}))
            .await,
        422,
    )
    .await;
    let items: Vec<Value> = app.get("/api/v1/items/").await.json().await.unwrap();
    assert!(items.is_empty(), "a dry run stores nothing");
}
both_backends!(dry_run_applies_rules_without_storing);

/// Runs the dry-run endpoint with the current rule set.
async fn dry_run(app: &TestApp, candidates: usize) -> (Value, Duration) {
    let cands: Vec<Value> = (1..=candidates as i64)
        .map(|i| json!({"item_id": i, "score": 1.0 / i as f64, "category": format!("c{}", i % 4)}))
        .collect();
    let started = Instant::now();
    let res = app
        .post(
            "/api/v1/rules/dry-run",
            &json!({"candidates": cands, "user": {"age": 30}}),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 200, "a hostile rule never fails the request");
    (res.json().await.unwrap(), elapsed)
}

fn step<'a>(out: &'a Value, rule: &str) -> &'a Value {
    out["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rule"] == rule)
        .unwrap()
}

#[tokio::test]
async fn hostile_rules_are_contained() {
    // The deadline is wall-clock: with the whole suite running on two cores
    // a rule that traps at once can still be descheduled past the default
    // 25 ms and be reported as a timeout. A roomier deadline keeps each
    // case's cause its own; the looping rule still hits it.
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.rule_deadline_ms = 250).await;
    let filter = wasm::hostile("hostile_filter");
    let boost = wasm::hostile("hostile_boost");
    let rerank = wasm::hostile("hostile_rerank");
    let deadline = Duration::from_millis(app.state.settings.rule_deadline_ms);
    let cases: Vec<(&[u8], &str, f64, &str)> = vec![
        (&filter, "hostile_filter", 0.0, "timeout"),
        (&filter, "hostile_filter", 1.0, "out_of_memory"),
        (&filter, "hostile_filter", 2.0, "trap"),
        (&filter, "hostile_filter", 3.0, "contract"),
        (&filter, "hostile_filter", 4.0, "contract"),
        (&filter, "hostile_filter", 5.0, "rule_error"),
        (&boost, "hostile_boost", 0.0, "trap"),
        (&boost, "hostile_boost", 1.0, "contract"),
        (&boost, "hostile_boost", 2.0, "contract"),
        (&boost, "hostile_boost", 3.0, "contract"),
        (&boost, "hostile_boost", 5.0, "contract"),
        (&rerank, "hostile_rerank", 0.0, "contract"),
        (&rerank, "hostile_rerank", 1.0, "contract"),
        (&rerank, "hostile_rerank", 2.0, "contract"),
    ];
    for (bytes, name, mode, cause) in cases {
        wasm::add_rule(&app.state, bytes, vec![mode], FailurePolicy::FailOpen);
        let (out, elapsed) = dry_run(&app, 20).await;
        let s = step(&out, name);
        assert_eq!(s["status"], "failed", "{name} mode {mode}: {s}");
        assert_eq!(s["cause"], cause, "{name} mode {mode}: {s}");
        assert_eq!(s["policy"], "fail_open");
        // Fail-open: the rule is skipped, the built-ins still ran.
        assert_eq!(
            out["results"].as_array().unwrap().len(),
            20,
            "{name} mode {mode}"
        );
        assert!(out["blocked_by"].is_null());
        // The request's other rules share its sandbox: a trap there (which
        // leaves a wasmtime store unusable) must not fail them.
        for other in out["trace"].as_array().unwrap() {
            if other["rule"] != name {
                assert_ne!(other["status"], "failed", "{name} mode {mode}: {other}");
            }
        }
        assert!(
            elapsed < deadline + Duration::from_millis(500),
            "{name} mode {mode} took {elapsed:?}"
        );
        app.state
            .rules
            .update(|r| {
                r.retain(|x| x.name() != name);
                Ok::<_, ()>(())
            })
            .unwrap();
    }
    // The panic message is kept for the operator.
    wasm::add_rule(&app.state, &boost, vec![0.0], FailurePolicy::FailOpen);
    let (out, _) = dry_run(&app, 5).await;
    assert!(
        step(&out, "hostile_boost")["error"]
            .as_str()
            .unwrap()
            .contains("panicked on purpose")
    );
    // Failures are counted per cause.
    let list: Value = app
        .get("/api/v1/rules/hostile_boost")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["stats"]["failures"]["trap"], 2);

    // Fail-closed: nothing is shown, and the response says why.
    wasm::add_rule(&app.state, &filter, vec![0.0], FailurePolicy::FailClosed);
    let (out, _) = dry_run(&app, 10).await;
    assert_eq!(out["results"].as_array().unwrap().len(), 0);
    assert_eq!(out["blocked_by"], "hostile_filter");

    // And with good behaviour the same components work again.
    wasm::add_rule(&app.state, &filter, vec![6.0], FailurePolicy::FailClosed);
    wasm::add_rule(&app.state, &rerank, vec![3.0], FailurePolicy::FailOpen);
    let (out, _) = dry_run(&app, 10).await;
    assert_eq!(out["results"].as_array().unwrap().len(), 10);
    assert_eq!(step(&out, "hostile_rerank")["status"], "applied");
}

#[tokio::test]
async fn requests_take_turns_at_the_rules_so_waiting_costs_no_deadline() {
    // One pipeline at a time (`RULE_CONCURRENCY=1`) and a rule that loops
    // until its deadline: three requests at once run their rules one after
    // another (without turns they would share the cores and all stop at
    // one deadline), and each still gets its whole deadline.
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.rule_deadline_ms = 150;
        s.rule_concurrency = 1;
    })
    .await;
    let filter = wasm::hostile("hostile_filter");
    wasm::add_rule(&app.state, &filter, vec![0.0], FailurePolicy::FailOpen);
    let started = Instant::now();
    let runs = futures_util::future::join_all((0..3).map(|_| dry_run(&app, 10))).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(3 * 150),
        "three 150 ms rules took turns, yet all ended in {elapsed:?}"
    );
    for (out, _) in &runs {
        let s = step(out, "hostile_filter");
        assert_eq!(s["cause"], "timeout", "{s}");
        // Its whole deadline (checked on a 1 ms epoch tick).
        assert!(s["duration_ms"].as_f64().unwrap() >= 140.0, "{s}");
        assert_eq!(out["results"].as_array().unwrap().len(), 10);
    }
}

#[tokio::test]
async fn rules_cannot_reach_outside_or_keep_state() {
    // Room for a loaded test machine (see `hostile_rules_are_contained`).
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.rule_deadline_ms = 250).await;
    let boost = wasm::hostile("hostile_boost");
    // Probe files, environment and network: all must fail (scores double).
    wasm::add_rule(&app.state, &boost, vec![4.0], FailurePolicy::FailOpen);
    let (out, _) = dry_run(&app, 3).await;
    let s = step(&out, "hostile_boost");
    assert_eq!(s["status"], "applied", "{s}");
    let b = &s["boosted"][0];
    assert_eq!(
        b["after"].as_f64().unwrap(),
        2.0 * b["before"].as_f64().unwrap()
    );
    // Every call gets a fresh instance: the call counter is always 1.
    wasm::add_rule(&app.state, &boost, vec![6.0], FailurePolicy::FailOpen);
    for _ in 0..3 {
        let (out, _) = dry_run(&app, 3).await;
        let s = step(&out, "hostile_boost");
        assert!(
            s["boosted"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["after"] == 1.0),
            "{s}"
        );
    }
}

#[tokio::test]
async fn the_example_rule_runs_in_the_service() {
    // Room for a loaded test machine (see `hostile_rules_are_contained`).
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.rule_deadline_ms = 250).await;
    let name = wasm::add_rule(
        &app.state,
        &wasm::example_rule(),
        vec![1.5],
        FailurePolicy::FailOpen,
    );
    assert_eq!(name, "boost_local_items");
    let res = app
        .post(
            "/api/v1/rules/dry-run",
            &json!({"user": {"country": "JP"}, "rule_types": ["boost"], "candidates": [
                {"item_id": 1, "score": 1.0, "features": {"origin_country": "US"}},
                {"item_id": 2, "score": 0.8, "features": {"origin_country": "jp"}}
            ]}),
        )
        .await;
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["results"][0]["item_id"], 2, "the local item moved up");
    let boosted = step(&out, "boost_local_items")["boosted"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(boosted.len(), 1);
    assert_eq!(boosted[0]["item_id"], 2);
    assert!((boosted[0]["after"].as_f64().unwrap() - 0.8 * 1.5).abs() < 1e-9);
}

/// Each built-in component gives exactly what its native code gives.
#[tokio::test]
async fn wasm_and_native_rules_agree() {
    use recengine_builtin_rules as b;
    use recengine_rules_sdk::{Params, Rule, testing::Subject};

    let app = TestApp::spawn(Backend::Sqlite).await;
    let now = 1_800_000_000_000_i64;
    let mut builder = RequestBuilder::new()
        .user(9, Some(16), Some("DE"), &["c1"], &["t2"], &[4, 8])
        .context(
            Some("FR"),
            Some("mobile"),
            Some(20),
            true,
            now,
            &[("ab", "x")],
        )
        .exclude(&[5, 10]);
    for i in 0..60_i64 {
        let mut item = Item::new(i, 1.0 - i as f64 / 100.0)
            .category(&format!("c{}", i % 3))
            .tags(&[&format!("t{}", i % 5)])
            .created_at_ms(now - i * 86_400_000 / 4);
        if i % 7 == 0 {
            item = item.in_stock(false);
        }
        if i % 5 == 0 {
            item = item.min_age(18);
        }
        if i % 6 == 0 {
            item = item.allowed_in(&["US"]);
        }
        if i % 9 == 0 {
            item = item.blocked_in(&["FR"]);
        }
        if i % 4 == 0 {
            item = item.promo_until(Some(now + if i % 8 == 0 { 1 } else { -1 }));
        }
        builder = builder.item(item);
    }
    let request = builder.build();
    fn native<R: Rule>(subject: &Subject) -> recengine_rules_sdk::Outcome {
        let meta = R::metadata();
        let req = subject.request_for(&meta, meta.default_params());
        R::apply(&req, &Params::of(&meta, &req)).unwrap()
    }
    let expected = [
        (
            "filter_out_of_stock",
            native::<b::FilterOutOfStock>(&request),
        ),
        (
            "filter_age_restricted",
            native::<b::FilterAgeRestricted>(&request),
        ),
        ("filter_purchased", native::<b::FilterPurchased>(&request)),
        (
            "filter_geo_restricted",
            native::<b::FilterGeoRestricted>(&request),
        ),
        ("boost_preferences", native::<b::BoostPreferences>(&request)),
        ("boost_promotional", native::<b::BoostPromotional>(&request)),
        ("boost_new_items", native::<b::BoostNewItems>(&request)),
        ("diversity", native::<b::Diversity>(&request)),
        ("filter_excluded", native::<b::FilterExcluded>(&request)),
    ];
    let set = app.state.rules.snapshot();
    for (name, want) in expected {
        let rule = set.rules.iter().find(|r| r.name() == name).unwrap();
        let got = pipeline::call_alone(&app.state.rules, rule, &request).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[tokio::test]
async fn components_in_the_rules_directory_load_at_start() {
    let dir = temp_dir("rules");
    std::fs::write(dir.join("boost_local_items.wasm"), wasm::example_rule()).unwrap();
    std::fs::write(dir.join("broken.wasm"), b"not a component").unwrap();
    let rules_dir = dir.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| s.rules_dir = rules_dir).await;
    let list: Value = app.get("/api/v1/rules/").await.json().await.unwrap();
    let names: Vec<&str> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        10,
        "nine built-ins and the example; the broken file is skipped"
    );
    // Priority 55 runs between boost_preferences (60) and boost_promotional (50).
    assert_eq!(names[6], "boost_local_items");
    assert_eq!(list["rules"][6]["source"], "rules_dir");
    std::fs::remove_dir_all(dir).unwrap();
}
