//! Rule bundles through HTTP and the CLI: activation, refusals that leave
//! the rules untouched, rollback, restart, two replicas, the watched
//! directory.

use std::time::Duration;

use recengine::rules::bundle::{format, signing};
use serde_json::{Value, json};

use crate::{
    both_backends,
    helpers::{
        Backend, TestApp,
        bundles::{bundle, follow_upload, upload, upload_async},
        eventually, eventually_some, expect_error, fresh_database_url, holds_throughout, ids_of,
        metrics, temp_dir,
        wasm::{example_rule, hostile},
    },
};

/// A one-rule bundle of the hostile filter with the given manifest entry
/// settings.
fn filter_bundle(revision: &str, settings: Value) -> Vec<u8> {
    let dir = temp_dir("bundles");
    std::fs::write(dir.join("f.wasm"), hostile("hostile_filter")).unwrap();
    let mut entry = json!({"component": "f.wasm"});
    entry
        .as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let manifest = json!({"name": "shop", "revision": revision, "rules": [entry]});
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = format::pack_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    archive
}

async fn rollback_to(app: &TestApp, revision: &str) {
    let res = app
        .post(
            "/api/v1/rules/bundles/shop/rollback",
            &json!({"revision": revision}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn rules(app: &TestApp) -> Value {
    app.get_json("/api/v1/rules/").await
}

fn rule<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
}

async fn a_bundle_activates_rolls_back_and_survives_a_restart(backend: Backend) {
    let database = fresh_database_url(backend).await;
    let db = database.clone();
    let app = TestApp::spawn_with(backend, move |s| s.database_url = db).await;

    let res = upload(&app, bundle("1", 2.0, true)).await;
    assert_eq!(res.status(), 201);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["name"], "shop");
    assert_eq!(report["revision"], "1");
    assert_eq!(
        report["rules"],
        json!(["boost_local_items", "hostile_filter"])
    );
    let list = rules(&app).await;
    let boost = rule(&list, "boost_local_items").unwrap();
    assert_eq!(boost["source"], "bundle:shop@1");
    assert_eq!(boost["config"]["factor"], 2.0);
    assert!(rule(&list, "hostile_filter").is_some());
    assert!(
        rule(&list, "filter_out_of_stock").is_some(),
        "built-ins stay"
    );

    // Revision 2 drops the filter and changes the factor.
    assert_eq!(upload(&app, bundle("2", 3.0, false)).await.status(), 201);
    let list = rules(&app).await;
    assert!(rule(&list, "hostile_filter").is_none());
    assert_eq!(
        rule(&list, "boost_local_items").unwrap()["config"]["factor"],
        3.0
    );

    // Re-uploading the same bytes is fine; the same revision with other
    // content is not.
    assert_eq!(upload(&app, bundle("2", 3.0, false)).await.status(), 201);
    let reason = expect_error(upload(&app, bundle("2", 4.0, false)).await, 422).await;
    assert!(reason.contains("already exists"), "{reason}");

    // Rollback restores revision 1's rules exactly.
    rollback_to(&app, "1").await;
    let list = rules(&app).await;
    assert!(rule(&list, "hostile_filter").is_some());
    assert_eq!(
        rule(&list, "boost_local_items").unwrap()["config"]["factor"],
        2.0
    );
    expect_error(
        app.post(
            "/api/v1/rules/bundles/shop/rollback",
            &json!({"revision": "9"}),
        )
        .await,
        404,
    )
    .await;

    let status: Value = app.get_json("/api/v1/rules/bundles/shop").await;
    assert_eq!(status["active_revision"], "1");
    assert_eq!(status["replica"]["revision"], "1");
    assert_eq!(status["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(status["rules"].as_array().unwrap().len(), 2);
    let history: Value = app.get_json("/api/v1/rules/bundles/shop/history").await;
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["rollback", "refused", "activate", "activate", "activate"]
    );

    // A restart comes back on revision 1.
    drop(app);
    let db = database.clone();
    let mut again = TestApp::spawn_without_admin(backend, move |s| s.database_url = db).await;
    again.make_admin_token_only().await;
    let list = rules(&again).await;
    assert_eq!(
        rule(&list, "boost_local_items").unwrap()["source"],
        "bundle:shop@1"
    );
    assert!(rule(&list, "hostile_filter").is_some());

    // Delete: the bundle's rules leave; the built-ins stay.
    assert_eq!(
        again.delete("/api/v1/rules/bundles/shop").await.status(),
        204
    );
    let list = rules(&again).await;
    assert!(rule(&list, "boost_local_items").is_none());
    assert!(rule(&list, "filter_out_of_stock").is_some());
    expect_error(again.delete("/api/v1/rules/bundles/shop").await, 404).await;
}
both_backends!(a_bundle_activates_rolls_back_and_survives_a_restart);

/// With `Prefer: respond-async` an upload is answered at once, 202 with
/// where to follow it; it goes live, or is refused with its reason, in the
/// background, and the upload list and the bundle's history say which.
#[tokio::test]
async fn an_upload_answers_at_once_when_asked_and_can_be_followed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let seen = follow_upload(&app, upload_async(&app, bundle("1", 2.0, true)).await).await;
    assert_eq!(seen[0]["state"], "queued", "{seen:?}");
    let done = seen.last().unwrap();
    assert_eq!(done["state"], "active", "{done}");
    assert_eq!(done["name"], "shop");
    assert_eq!(done["revision"], "1");
    assert_eq!(done["components"], 2);
    assert_eq!(done["components_ready"], 2);
    assert_eq!(
        done["report"]["rules"],
        json!(["boost_local_items", "hostile_filter"])
    );
    assert_eq!(done["digest"], done["report"]["digest"]);
    let list = rules(&app).await;
    assert_eq!(
        rule(&list, "boost_local_items").unwrap()["source"],
        "bundle:shop@1"
    );

    // Refused in the background: the reason is on the upload, in the
    // history, and the rules are revision 1's.
    let bad = filter_bundle("2", json!({"name": "not_the_filter"}));
    let seen = follow_upload(&app, upload_async(&app, bad).await).await;
    let refused = seen.last().unwrap();
    assert_eq!(refused["state"], "refused", "{refused}");
    let reason = refused["error"].as_str().unwrap();
    assert!(reason.contains("the manifest says"), "{reason}");
    let after = rules(&app).await;
    assert_eq!(
        rule(&after, "boost_local_items").unwrap()["source"],
        "bundle:shop@1"
    );
    assert!(rule(&after, "hostile_filter").is_some());
    let history = app.get_json("/api/v1/rules/bundles/shop/history").await;
    assert_eq!(history[0]["action"], "refused", "{history}");
    assert_eq!(history[0]["revision"], "2", "{history}");

    // Newest first; a synchronous upload is listed too.
    assert_eq!(upload(&app, bundle("3", 3.0, false)).await.status(), 201);
    let uploads = app.get_json("/api/v1/rules/bundles/uploads").await;
    let states: Vec<(&str, &str)> = uploads
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["revision"].as_str().unwrap(),
                u["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("3", "active"), ("2", "refused"), ("1", "active")],
        "{uploads}"
    );
    let unknown = app
        .get(&format!("/api/v1/rules/bundles/uploads/{}", "0".repeat(64)))
        .await;
    expect_error(unknown, 404).await;
}

#[tokio::test]
async fn bad_bundles_are_refused_and_change_nothing() {
    let (private, public) = signing::generate();
    let (other_private, _) = signing::generate();
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.bundle_public_keys = signing::TrustedKeys::parse(&format!("ops:{public}")).unwrap();
        s.max_bundle_bytes = 2 << 20;
        s.max_bundle_unpacked_bytes = 4 << 20;
    })
    .await;
    let before = rules(&app).await;
    let good = bundle("1", 2.0, true);
    let signed = |archive: &[u8], key: &str, id: &str| {
        let unpacked = format::unpack(archive, format::BundleCaps::NONE).unwrap();
        let sig = signing::sign(&unpacked.manifest_bytes, key, id).unwrap();
        format::resign(archive, &sig).unwrap()
    };

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unsigned", good.clone(), "not signed"),
        (
            "unknown key",
            signed(&good, &other_private, "intruder"),
            "unknown key",
        ),
        (
            "wrong key",
            signed(&good, &other_private, "ops"),
            "does not match",
        ),
        ("not an archive", b"hello".to_vec(), "gzip"),
    ];
    // Tampered: a component changed after packing (the manifest's digest
    // no longer matches).
    let tampered = {
        let b = format::unpack(&signed(&good, &private, "ops"), format::BundleCaps::NONE).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = b
            .manifest
            .rules
            .iter()
            .map(|r| (r.component.clone(), b.files[&r.component].clone()))
            .collect();
        let last = files[0].1.len() - 1;
        files[0].1[last] ^= 1;
        format::pack(&b.manifest_bytes, &files, b.signature.as_ref()).unwrap()
    };
    cases.push(("tampered", tampered, "does not match the manifest"));
    // A manifest changed after signing.
    let edited = {
        let b = format::unpack(&signed(&good, &private, "ops"), format::BundleCaps::NONE).unwrap();
        let text = String::from_utf8(b.manifest_bytes.clone())
            .unwrap()
            .replace("\"factor\": 2.0", "\"factor\": 90.0");
        let files: Vec<(String, Vec<u8>)> = b
            .manifest
            .rules
            .iter()
            .map(|r| (r.component.clone(), b.files[&r.component].clone()))
            .collect();
        format::pack(text.as_bytes(), &files, b.signature.as_ref()).unwrap()
    };
    cases.push(("edited manifest", edited, "does not match"));
    // Unknown manifest field.
    let unknown = format::pack(
        br#"{"name": "shop", "revision": "1", "rules": [], "colour": "red"}"#,
        &[],
        None,
    )
    .unwrap();
    cases.push(("unknown field", unknown, "unknown field"));
    // A zip bomb: 8 MiB of zeros packs into a few KiB.
    let bomb = format::pack(
        br#"{"name": "shop", "revision": "z", "rules": [{"component": "z.wasm"}]}"#,
        &[("z.wasm".into(), vec![0u8; 8 << 20])],
        None,
    )
    .unwrap();
    assert!(bomb.len() < 1 << 20);
    cases.push(("unpacks too large", bomb, "MAX_BUNDLE_UNPACKED_BYTES"));
    // A rule that fails its dry run (mode 5: returns an error).
    let failing = filter_bundle("x", json!({"config": {"mode": 5.0}}));
    cases.push((
        "failing dry run",
        signed(&failing, &private, "ops"),
        "dry run failed",
    ));
    // Limits looser than the service's.
    let loose = filter_bundle("y", json!({"limits": {"deadline_ms": 5000}}));
    cases.push((
        "loose limits",
        signed(&loose, &private, "ops"),
        "only be tighter",
    ));

    for (case, archive, expected) in cases {
        let reason = expect_error(upload(&app, archive).await, 422).await;
        assert!(
            reason.contains(expected),
            "{case}: expected {expected:?} in {reason:?}"
        );
    }
    // Oversized: refused before it is read.
    let res = upload(&app, vec![0u8; 3 << 20]).await;
    assert_eq!(res.status(), 413);
    let after = rules(&app).await;
    assert_eq!(
        after["rule_set_version"], before["rule_set_version"],
        "nothing swapped"
    );
    assert!(rule(&after, "hostile_filter").is_none());

    // The properly signed bundle goes in, and says who signed it.
    let res = upload(&app, signed(&good, &private, "ops")).await;
    assert_eq!(res.status(), 201);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["signed_by"], "ops");
    let status: Value = app.get_json("/api/v1/rules/bundles/shop").await;
    assert!(
        status["replica"]["last_error"]
            .as_str()
            .unwrap()
            .contains("only be tighter")
    );

    // Only ops and admins manage bundles.
    let user = app.create_user("viewer", json!({})).await;
    let token = app.login("viewer@example.com", "a-long-password").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = app
        .client
        .post(app.url("/api/v1/rules/bundles"))
        .bearer_auth(&token)
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "{user}");
}

/// Two replicas on one PostgreSQL: an upload to one is running on the
/// other within seconds (the periodic check).
#[tokio::test]
async fn two_replicas_converge() {
    let database = fresh_database_url(Backend::Postgres).await;
    let db = database.clone();
    let a = TestApp::spawn_with(Backend::Postgres, move |s| s.database_url = db).await;
    let db = database.clone();
    let mut b = TestApp::spawn_without_admin(Backend::Postgres, move |s| s.database_url = db).await;
    b.admin_token = a.admin_token.clone();
    assert_eq!(upload(&a, bundle("1", 2.0, true)).await.status(), 201);
    eventually(
        Duration::from_secs(5),
        "replica B picks up the bundle",
        async || rule(&rules(&b).await, "hostile_filter").is_some(),
    )
    .await;
    // And a rollback-by-delete too.
    assert_eq!(a.delete("/api/v1/rules/bundles/shop").await.status(), 204);
    eventually(
        Duration::from_secs(5),
        "replica B drops the deleted bundle",
        async || rule(&rules(&b).await, "hostile_filter").is_none(),
    )
    .await;
}

/// A bundle dropped into the rules directory activates on its own.
#[tokio::test]
async fn the_watched_directory_activates_bundles() {
    let dir = temp_dir("bundles");
    let watched = dir.clone();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| s.rules_dir = watched).await;
    std::fs::write(dir.join("shop.tar.gz"), bundle("7", 2.5, false)).unwrap();
    let boost = eventually_some(
        Duration::from_secs(5),
        "the bundle in the rules directory is activated",
        async || rule(&rules(&app).await, "boost_local_items").cloned(),
    )
    .await;
    assert_eq!(boost["source"], "bundle:shop@7");
    assert_eq!(boost["config"]["factor"], 2.5);
    std::fs::remove_dir_all(&dir).ok();
}

/// `recengine rules pack | keygen | sign | verify`.
#[test]
fn the_cli_packs_signs_and_verifies() {
    let dir = temp_dir("bundles");
    std::fs::write(dir.join("boost.wasm"), example_rule()).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        json!({"name": "cli", "revision": "1", "rules": [{"component": "boost.wasm"}]}).to_string(),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_recengine");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env("LOG_LEVEL", "error")
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    let out = run(&["rules", "pack", dir.to_str().unwrap(), "--out", "b.tar.gz"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["rules", "keygen", "ops", "--key-id", "ops"]);
    assert!(out.status.success());
    let keys = String::from_utf8(out.stdout).unwrap();
    let keys = keys
        .trim()
        .strip_prefix("BUNDLE_PUBLIC_KEYS=")
        .unwrap()
        .to_string();
    let out = run(&["rules", "verify", "b.tar.gz", "--keys", &keys]);
    assert!(
        !out.status.success(),
        "unsigned is refused when keys are given"
    );
    let out = run(&[
        "rules", "sign", "b.tar.gz", "--key", "ops.key", "--key-id", "ops",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["rules", "verify", "b.tar.gz", "--keys", &keys]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("signed by ops"));
    let (_, stranger) = signing::generate();
    let out = run(&[
        "rules",
        "verify",
        "b.tar.gz",
        "--keys",
        &format!("ops:{stranger}"),
    ]);
    assert!(!out.status.success(), "a different key does not verify");
    std::fs::remove_dir_all(&dir).ok();
}

/// Shadow mode: the candidate bundle's differences are reported and no
/// response changes until it is promoted.
#[tokio::test]
async fn shadow_mode_reports_differences_and_changes_no_response() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.cache_ttl = Duration::ZERO).await;
    let mut german = Vec::new();
    for n in 0..12 {
        let origin = if n >= 9 { "DE" } else { "US" };
        let res = app
            .post(
                "/api/v1/items/",
                &json!({"title": format!("Item {n}"), "category": format!("c{n}"),
                        "features": {"in_stock": true, "origin_country": origin},
                        "popularity_score": 100 - n}),
            )
            .await;
        assert_eq!(res.status(), 201);
        if origin == "DE" {
            german.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
        }
    }
    let user = app.create_user("hans", json!({"country": "DE"})).await;
    assert_eq!(
        app.post("/api/v1/models/retrain", &json!({}))
            .await
            .status(),
        200
    );
    let path = format!("/api/v1/recommendations/user/{}?top_n=5", user["id"]);
    let served = |body: Value| ids_of(&body);
    let before = served(app.get_json(&path).await);
    assert!(before.iter().all(|id| !german.contains(id)), "{before:?}");

    let res = app
        .client
        .post(app.url("/api/v1/rules/bundles/shadow"))
        .bearer_auth(&app.admin_token)
        .body(bundle("shadowed", 100.0, false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        served(app.get_json(&path).await),
        before,
        "responses unchanged"
    );
    let report = eventually_some(
        Duration::from_millis(2500),
        "the shadow report compares a request",
        async || {
            let report = app.get_json("/api/v1/rules/bundles/shadow").await;
            (report["compared"].as_u64().unwrap() >= 1).then_some(report)
        },
    )
    .await;
    assert_eq!(report["revision"], "shadowed");
    assert_eq!(report["identical"], 0, "{report}");
    assert!(report["items_added"].as_u64().unwrap() >= 1, "{report}");
    assert!(report["mean_overlap"].as_f64().unwrap() < 1.0);
    assert_eq!(report["errors"], 0);
    let example = &report["examples"][0];
    assert_eq!(example["live"], json!(before));
    assert!(
        example["shadow"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| german.contains(&id.as_i64().unwrap())),
        "{report}"
    );

    // Promote: now it serves.
    let res = app
        .post("/api/v1/rules/bundles/shadow/promote", &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let after = served(app.get_json(&path).await);
    assert!(after.iter().any(|id| german.contains(id)), "{after:?}");
    expect_error(app.get("/api/v1/rules/bundles/shadow").await, 404).await;
}

/// A rollback made after a bundle came in through the directory survives a
/// restart: the file is not activated again.
#[tokio::test]
async fn a_restart_does_not_undo_a_rollback_of_a_directory_bundle() {
    let dir = temp_dir("bundles");
    let database = fresh_database_url(Backend::Sqlite).await;
    let (watched, db) = (dir.clone(), database.clone());
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.rules_dir = watched;
        s.database_url = db;
    })
    .await;
    assert_eq!(upload(&app, bundle("1", 2.0, false)).await.status(), 201);
    std::fs::write(dir.join("shop.tar.gz"), bundle("2", 3.0, false)).unwrap();
    let source = |list: Value| rule(&list, "boost_local_items").unwrap()["source"].clone();
    eventually(
        Duration::from_secs(5),
        "the directory's revision 2 is activated",
        async || source(rules(&app).await) == "bundle:shop@2",
    )
    .await;
    rollback_to(&app, "1").await;
    drop(app);
    let (watched, db) = (dir.clone(), database.clone());
    let mut again = TestApp::spawn_without_admin(Backend::Sqlite, move |s| {
        s.rules_dir = watched;
        s.database_url = db;
    })
    .await;
    again.make_admin_token_only().await;
    // Long enough for the restarted watcher (one look a second) to have
    // looked at the directory twice.
    holds_throughout(
        Duration::from_millis(2500),
        "the rollback to revision 1 stands (the file is not activated again)",
        async || source(rules(&again).await) == "bundle:shop@1",
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A one-rule bundle of the hostile filter under any bundle name, with the
/// component's bytes made unique by `tag` (a custom section, which changes
/// the digest and nothing else) and extra manifest entry settings.
fn tagged_bundle(name: &str, revision: &str, tag: &str, settings: Value) -> Vec<u8> {
    let mut component = hostile("hostile_filter");
    let mut payload = vec![9u8];
    payload.extend_from_slice(b"test-tag:");
    payload.extend_from_slice(tag.as_bytes());
    assert!(payload.len() < 128, "a one-byte LEB128 size");
    component.push(0); // custom section
    component.push(payload.len() as u8);
    component.extend(payload);
    let mut entry = json!({"component": "f.wasm", "sha256": format::sha256_hex(&component)});
    entry
        .as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    let manifest = json!({"name": name, "revision": revision, "rules": [entry]});
    // `format::pack`, not `pack_dir`: the CLI's packer refuses what the
    // service must be shown to refuse.
    format::pack(
        manifest.to_string().as_bytes(),
        &[("f.wasm".to_string(), component)],
        None,
    )
    .unwrap()
}

/// Every numeric manifest field is range-checked: nothing wraps or
/// truncates into another value (2^44+32 MiB once meant 32 MiB).
#[tokio::test]
async fn numeric_manifest_fields_out_of_range_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (settings, field, range) in [
        (
            json!({"limits": {"memory_mb": (1u64 << 44) + 32}}),
            "limits.memory_mb: 17592186044448",
            "1 to 256",
        ),
        (
            json!({"limits": {"memory_mb": 0}}),
            "limits.memory_mb",
            "1 to 256",
        ),
        (
            json!({"limits": {"deadline_ms": 0}}),
            "limits.deadline_ms",
            "1 to 10000",
        ),
        (
            json!({"limits": {"deadline_ms": u64::MAX}}),
            "limits.deadline_ms",
            "1 to 10000",
        ),
        (
            json!({"priority": 1u64 << 40}),
            "priority",
            "-10000 to 10000",
        ),
        (json!({"priority": -20000}), "priority", "-10000 to 10000"),
    ] {
        let archive = tagged_bundle("shop", "r", "r", settings);
        let reason = expect_error(upload(&app, archive).await, 422).await;
        assert!(
            reason.contains(&format!("rules[0].{field}")) && reason.contains(range),
            "{reason}"
        );
    }
    assert!(rule(&rules(&app).await, "hostile_filter").is_none());
    // In range and tighter than the service's: accepted.
    let res = upload(
        &app,
        tagged_bundle(
            "shop",
            "ok",
            "ok",
            json!({"limits": {"memory_mb": 16}, "priority": 10000}),
        ),
    )
    .await;
    assert_eq!(res.status(), 201);
}

/// Components of refused bundles do not stay compiled: the cache holds
/// what rule sets use.
#[tokio::test]
async fn refused_uploads_do_not_grow_the_compiled_cache() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let engine = app.state.rules.engine.clone();
    let before = engine.compiled_components();
    for n in 0..8 {
        // Compiles, then fails validation: the manifest names another rule.
        let archive = tagged_bundle(
            "cachetest",
            &n.to_string(),
            &n.to_string(),
            json!({"name": "not_this_rule"}),
        );
        let reason = expect_error(upload(&app, archive).await, 422).await;
        assert!(reason.contains("the manifest says"), "{reason}");
    }
    assert_eq!(engine.compiled_components(), before);
    // An accepted one is kept while active, and freed once replaced.
    let res = upload(&app, tagged_bundle("cachetest", "a", "a", json!({}))).await;
    assert_eq!(res.status(), 201);
    assert_eq!(engine.compiled_components(), before + 1);
    let res = upload(&app, tagged_bundle("cachetest", "b", "b", json!({}))).await;
    assert_eq!(res.status(), 201);
    assert_eq!(engine.compiled_components(), before + 1);
}

/// A restart with `BUNDLE_PUBLIC_KEYS` set cannot load the unsigned
/// revision the database lists as active; that is visible in the bundle
/// listing, the bundle's history and the failure counter.
async fn an_active_unsigned_bundle_refused_after_a_restart_is_visible(backend: Backend) {
    let database = fresh_database_url(backend).await;
    let db = database.clone();
    let app = TestApp::spawn_with(backend, move |s| s.database_url = db).await;
    let name = format!("unsigned-{}", uuid::Uuid::new_v4().simple());
    let res = upload(&app, tagged_bundle(&name, "1", "u", json!({}))).await;
    assert_eq!(res.status(), 201);
    drop(app);

    let (_, public) = signing::generate();
    let db = database.clone();
    let mut again = TestApp::spawn_without_admin(backend, move |s| {
        s.database_url = db;
        s.bundle_public_keys = signing::TrustedKeys::parse(&format!("ops:{public}")).unwrap();
    })
    .await;
    again.make_admin_token_only().await;

    let list: Vec<Value> = again
        .get_json("/api/v1/rules/bundles")
        .await
        .as_array()
        .unwrap()
        .clone();
    let summary = list.iter().find(|b| b["name"] == name.as_str()).unwrap();
    assert_eq!(summary["active_revision"], "1");
    assert_eq!(summary["running_revision"], Value::Null);
    assert_eq!(summary["refused_revision"], "1", "{summary}");
    let error = summary["last_error"].as_str().unwrap();
    assert!(error.contains("not signed"), "{error}");
    assert!(rule(&rules(&again).await, "hostile_filter").is_none());

    let history = again
        .get_json(&format!("/api/v1/rules/bundles/{name}/history"))
        .await;
    let refused = &history[0];
    assert_eq!(refused["action"], "refused", "{history}");
    assert_eq!(refused["revision"], "1");
    assert_eq!(refused["actor"], "sync");
    assert!(
        refused["error"].as_str().unwrap().contains("not signed"),
        "{history}"
    );

    let text = again.get("/metrics").await.text().await.unwrap();
    let samples = metrics::parse(&text);
    let series = format!("bundle_failures_total{{bundle=\"{name}\",cause=\"signature\"}}");
    assert_eq!(samples.get(&series), Some(&1.0), "{series}");
}
both_backends!(an_active_unsigned_bundle_refused_after_a_restart_is_visible);
