//! Rules written in Python (componentize-py) and JavaScript
//! (componentize-js), built from `examples/python-margin-boost` and
//! `examples/javascript-margin-boost` by the pinned toolchains, shipped in
//! bundles and run by the real server: they change a recommendation
//! exactly as the same rule in Rust does, a restart loads them compiled,
//! and a component importing what the host does not provide is refused by
//! name, with the fix.

pub mod build;

use std::time::{Duration, Instant};

use recengine::rules::{bundle::format, engine::Sizing};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp,
    bundles::{follow_upload, upload, upload_async},
    eventually_some, expect_error, fresh_database_url, ids_of, temp_dir,
    wasm::merchandising,
};
use build::{Source, component, toolchains_ready};

/// A bundle of `rules`: (file name, component, weight).
fn bundle(name: &str, revision: &str, rules: &[(&str, Vec<u8>, f64)]) -> Vec<u8> {
    let dir = temp_dir("lang-bundle");
    let mut entries = Vec::new();
    for (file, bytes, weight) in rules {
        std::fs::write(dir.join(file), bytes).unwrap();
        entries.push(json!({"component": file, "config": {"weight": weight}}));
    }
    let manifest = json!({"name": name, "revision": revision, "rules": entries});
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = format::pack_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    archive
}

/// Items whose popularity and margin disagree: the least popular earns
/// most.
async fn catalogue(app: &TestApp) -> Vec<(&'static str, i64)> {
    let items = [
        ("popular", json!({}), 100.0),
        ("thin", json!({"margin": 0.05}), 90.0),
        ("clamped", json!({"margin": 3.0}), 60.0),
        ("fat", json!({"margin": 0.9}), 40.0),
        ("negative", json!({"margin": -1.0}), 30.0),
    ];
    let mut ids = Vec::new();
    for (key, features, popularity) in items {
        let id = app
            .add_item(
                json!({"title": key, "category": "shop", "features": features,
                             "popularity_score": popularity}),
            )
            .await;
        ids.push((key, id));
    }
    app.retrain().await;
    ids
}

async fn recommend(app: &TestApp, user: i64) -> Value {
    let res = app
        .post(
            "/api/v1/recommendations/",
            &json!({"user_id": user, "top_n": 5, "explain": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// (id, score) of each recommendation, in order.
fn ranked(body: &Value) -> Vec<(i64, f64)> {
    body["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["item_id"].as_i64().unwrap(), r["score"].as_f64().unwrap()))
        .collect()
}

/// `boost_high_margin`'s step of the trace: (item, after / before).
fn boosts(body: &Value) -> Vec<(i64, f64)> {
    let step = body["rule_trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rule"] == "boost_high_margin")
        .unwrap_or_else(|| panic!("no boost_high_margin in {body}"));
    assert_eq!(step["status"], "applied", "{step}");
    let mut boosts: Vec<(i64, f64)> = step["boosted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["item_id"].as_i64().unwrap(),
                b["after"].as_f64().unwrap() / b["before"].as_f64().unwrap(),
            )
        })
        .collect();
    boosts.sort_by_key(|b| b.0);
    boosts
}

/// The same rule in Python, JavaScript and Rust, shipped one after the
/// other as revisions of one bundle: each reorders the list as the rule
/// says, and all three give the same list with the same scores.
#[tokio::test]
async fn python_and_javascript_rules_change_recommendations_as_rust_does() {
    if !toolchains_ready("python_and_javascript_rules_change_recommendations") {
        return;
    }
    let (python, javascript) = std::thread::scope(|s| {
        let py = s.spawn(|| component(Source::Python));
        let js = s.spawn(|| component(Source::JavaScript));
        (py.join().unwrap(), js.join().unwrap())
    });
    assert_eq!(Sizing::of(&python), Sizing::Large);
    assert_eq!(Sizing::of(&javascript), Sizing::Large);
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ids = catalogue(&app).await;
    let id = |key: &str| ids.iter().find(|(k, _)| *k == key).unwrap().1;
    let user = app.create_user("shopper", json!({})).await["id"]
        .as_i64()
        .unwrap();
    let before = recommend(&app, user).await;
    assert_eq!(ids_of(&before)[0], id("popular"), "{before}");

    let mut lists = Vec::new();
    for (revision, bytes) in [
        ("python", python),
        ("javascript", javascript),
        ("rust", merchandising("boost_high_margin")),
    ] {
        let res = upload(
            &app,
            bundle("margins", revision, &[("rule.wasm", bytes, 2.0)]),
        )
        .await;
        assert_eq!(
            res.status(),
            201,
            "{revision}: {}",
            res.text().await.unwrap()
        );
        let after = recommend(&app, user).await;
        // x(1 + 2 * margin), the margin clamped to 0..1: the high margins
        // overtake the most popular item, which has none.
        let order = ids_of(&after);
        let rank = |key: &str| order.iter().position(|&i| i == id(key)).unwrap();
        assert!(rank("fat") < rank("popular"), "{revision}: {after}");
        assert!(rank("clamped") < rank("popular"), "{revision}: {after}");
        let expected = vec![
            (id("thin"), 1.0 + 2.0 * 0.05),
            (id("clamped"), 3.0),
            (id("fat"), 1.0 + 2.0 * 0.9),
        ];
        let got = boosts(&after);
        assert_eq!(got.len(), expected.len(), "{revision}: {got:?}");
        for ((id, ratio), (want_id, want)) in got.iter().zip(&expected) {
            assert_eq!(id, want_id, "{revision}: {got:?}");
            assert!((ratio - want).abs() < 1e-9, "{revision}: {got:?}");
        }
        lists.push((revision, ranked(&after)));
    }
    let (_, rust) = lists.last().unwrap().clone();
    for (revision, list) in &lists {
        assert_eq!(list, &rust, "{revision} and rust disagree");
    }
}

/// A restart with a Python and a JavaScript rule active loads both (and
/// the built-ins) from the compiled-rules directory instead of compiling
/// them, and serves them.
#[tokio::test]
async fn a_restart_loads_rules_compiled_before() {
    if !toolchains_ready("a_restart_loads_rules_compiled_before") {
        return;
    }
    let (python, javascript) = std::thread::scope(|s| {
        let py = s.spawn(|| component(Source::Python));
        let js = s.spawn(|| component(Source::JavaScriptNamed("boost_high_margin_js")));
        (py.join().unwrap(), js.join().unwrap())
    });
    let compiled = temp_dir("compiled-rules");
    let database = fresh_database_url(Backend::Sqlite).await;
    let settings = |s: &mut recengine::config::Settings| {
        s.compiled_rules_dir = Some(compiled.clone());
        s.database_url = database.clone();
    };
    let first = TestApp::spawn_with(Backend::Sqlite, settings).await;
    catalogue(&first).await;
    let user = first.create_user("shopper", json!({})).await["id"]
        .as_i64()
        .unwrap();
    // Compiling two interpreted components takes seconds: asked not to
    // wait, the upload answers at once, and the bundle's status shows it
    // compiling until it is live.
    let asked = Instant::now();
    let res = upload_async(
        &first,
        bundle(
            "interpreted",
            "1",
            &[("py.wasm", python, 1.0), ("js.wasm", javascript, 1.0)],
        ),
    )
    .await;
    let answered = asked.elapsed();
    assert_eq!(res.status(), 202);
    let compiling = eventually_some(
        Duration::from_secs(60),
        "the bundle's status shows the upload",
        async || {
            let status = first.get("/api/v1/rules/bundles/interpreted").await;
            if status.status() != 200 {
                return None;
            }
            let status: Value = status.json().await.unwrap();
            status["uploads"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(compiling["state"], "preparing", "{compiling}");
    assert_eq!(compiling["components"], 2, "{compiling}");
    let seen = follow_upload(&first, res).await;
    let live = asked.elapsed();
    let done = seen.last().unwrap();
    assert_eq!(done["state"], "active", "{done}");
    assert!(
        answered * 4 < live,
        "answered in {answered:?}, live after {live:?}"
    );
    eprintln!(
        "upload of a Python and a JavaScript rule: answered in {answered:?}, live after {live:?}"
    );
    let stats = first.state.rules.engine.compile_stats();
    assert!(stats.compiled >= 2, "{stats:?}");
    let stored = std::fs::read_dir(&compiled)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "cwasm")
        })
        .count();
    assert!(stored >= 2, "{stored} compiled components stored");
    drop(first);

    let started = Instant::now();
    let mut second = TestApp::spawn_without_admin(Backend::Sqlite, settings).await;
    let restart = started.elapsed();
    let stats = second.state.rules.engine.compile_stats();
    assert_eq!(stats.compiled, 0, "nothing compiled again: {stats:?}");
    assert!(stats.from_disk >= 2, "{stats:?}");
    eprintln!("restart with a Python and a JavaScript rule active: {restart:?} ({stats:?})");
    second.make_admin_token_only().await;
    let body = recommend(&second, user).await;
    for rule in ["boost_high_margin", "boost_high_margin_js"] {
        let step = body["rule_trace"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule} in {body}"));
        assert_eq!(step["status"], "applied", "{step}");
        assert!(!step["boosted"].as_array().unwrap().is_empty(), "{step}");
    }
    std::fs::remove_dir_all(&compiled).ok();
}

/// componentize-js's default build imports `wasi:http`: the upload is
/// refused with the import's name and the flag that drops it.
#[tokio::test]
async fn an_import_the_host_does_not_provide_is_refused_by_name() {
    if !toolchains_ready("an_import_the_host_does_not_provide_is_refused_by_name") {
        return;
    }
    let defaults = component(Source::JavaScriptDefaults);
    let app = TestApp::spawn(Backend::Sqlite).await;
    let detail = expect_error(
        upload(&app, bundle("http", "1", &[("rule.wasm", defaults, 1.0)])).await,
        422,
    )
    .await;
    assert!(detail.contains("wasi:http/"), "{detail}");
    assert!(detail.contains("-d http"), "{detail}");
}

/// What carries across calls: nothing by default; with `reuse_instances`
/// the rule's globals, until a call fails (its instance is dropped) or the
/// instance has used half of its memory's room (it is retired before a call
/// would run out).
#[tokio::test]
async fn reused_instances_keep_globals_until_a_call_fails() {
    use recengine::rules::{
        engine::{Limits, RuleEngine},
        pipeline::call_alone,
        registry::{ActiveRule, RuleRegistry, RuleSource, param_from_json},
    };
    use recengine_rules_sdk::{
        Outcome,
        testing::{Item, RequestBuilder},
    };

    if !toolchains_ready("reused_instances_keep_globals_until_a_call_fails") {
        return;
    }
    let counter = component(Source::PythonFixture("call-counter"));
    let registry = RuleRegistry::new(RuleEngine::new(Limits::default()).unwrap());
    let compiled = registry.engine.load(&counter).unwrap();
    let subject = RequestBuilder::new()
        .item(Item::new(1, 0.5))
        .item(Item::new(2, 0.4))
        .build();
    // The score each of `calls` calls gives (an error: -1); each call
    // keeps `grow_kib` more KiB.
    let run = |reuse: bool, fail_at: f64, grow_kib: f64, calls: usize| -> Vec<f64> {
        let mut rule = ActiveRule::from_compiled(
            compiled.clone(),
            RuleSource::Custom("test".into()),
            Limits {
                reuse_instances: reuse,
                // What is tested is memory, not time: a busy machine must
                // not fail a call by its deadline.
                deadline: Duration::from_secs(2),
                ..registry.engine.limits()
            },
        );
        let params = &compiled.metadata.params;
        rule.config = vec![
            param_from_json(&params[0], &json!(fail_at)).unwrap(),
            param_from_json(&params[1], &json!(grow_kib)).unwrap(),
        ];
        (0..calls)
            .map(|_| match call_alone(&registry, &rule, &subject) {
                Ok(Outcome::Rescored(scores)) => scores[0],
                Ok(other) => panic!("{other:?}"),
                Err(e) => {
                    eprintln!("call failed: {e}");
                    -1.0
                }
            })
            .collect()
    };
    // Fresh instances: every call is its instance's first.
    assert_eq!(run(false, 0.0, 0.0, 4), vec![1.0; 4]);
    // Reused: the module global counts on; the failed third call drops
    // its instance, and the next call starts from a fresh one.
    assert_eq!(run(true, 3.0, 0.0, 5), vec![1.0, 2.0, -1.0, 1.0, 2.0]);
    // A heap that only grows (4 MiB a call under the 32 MiB cap) would
    // run out within eight calls; the instance is retired first, so no
    // call fails and the count starts over.
    let growing = run(true, 0.0, 4096.0, 16);
    assert!(!growing.contains(&-1.0), "{growing:?}");
    assert!(growing[1..].contains(&1.0), "never retired: {growing:?}");
    assert!(growing.contains(&2.0), "not reused at all: {growing:?}");
}
