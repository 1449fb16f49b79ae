//! Rule bundles for the tests that upload one (the bundle tests, the
//! console's): built as `rules pack` builds them, uploaded as the admin.

use recengine::rules::bundle::format;
use serde_json::json;

use super::{
    TestApp, temp_dir,
    wasm::{example_rule, hostile, merchandising},
};

/// A bundle built the way `rules pack` builds it: the example boost rule
/// (factor `factor`) and, optionally, the well-behaved hostile filter.
pub fn bundle(revision: &str, factor: f64, with_filter: bool) -> Vec<u8> {
    let dir = temp_dir("bundles");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/boost.wasm"), example_rule()).unwrap();
    let mut rules = vec![json!({
        "component": "rules/boost.wasm",
        "name": "boost_local_items",
        "priority": 55,
        "config": {"factor": factor},
    })];
    if with_filter {
        std::fs::write(dir.join("rules/filter.wasm"), hostile("hostile_filter")).unwrap();
        rules.push(json!({
            "component": "rules/filter.wasm",
            "config": {"mode": 6.0},
            "failure_policy": "fail_open",
            "limits": {"deadline_ms": 10, "memory_mb": 16},
        }));
    }
    let manifest = json!({"name": "shop", "revision": revision, "rules": rules});
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = format::pack_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    archive
}

/// The example bundle `examples/merchandising` as its manifest describes
/// it, each rule's entry updated with the fields of `overrides[name]`
/// (`config`, `enabled`, `promote_skip_filters`, ...) when given.
pub fn merchandising_bundle(revision: &str, overrides: serde_json::Value) -> Vec<u8> {
    let root = super::workspace_root().join("examples/merchandising");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("manifest.json")).unwrap()).unwrap();
    manifest["revision"] = json!(revision);
    let dir = temp_dir("bundles");
    for rule in manifest["rules"].as_array_mut().unwrap() {
        let name = rule["name"].as_str().unwrap().to_string();
        let file = rule["component"].as_str().unwrap().to_string();
        std::fs::write(dir.join(&file), merchandising(&name)).unwrap();
        if let Some(fields) = overrides.get(&name).and_then(|o| o.as_object()) {
            for (key, value) in fields {
                rule[key] = value.clone();
            }
        }
    }
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = format::pack_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    archive
}

/// Uploads a bundle archive as the admin.
pub async fn upload(app: &TestApp, archive: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/rules/bundles"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .body(archive)
        .send()
        .await
        .unwrap()
}

/// Uploads a bundle archive as the admin with `Prefer: respond-async`.
pub async fn upload_async(app: &TestApp, archive: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/rules/bundles"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/gzip")
        .header("prefer", "respond-async")
        .body(archive)
        .send()
        .await
        .unwrap()
}

/// Follows an upload answered 202 until it is active or refused; every
/// progress seen on the way, the last one finished.
pub async fn follow_upload(app: &TestApp, res: reqwest::Response) -> Vec<serde_json::Value> {
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["preference-applied"], "respond-async");
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let taken: serde_json::Value = res.json().await.unwrap();
    assert!(
        location.ends_with(taken["digest"].as_str().unwrap()),
        "{location} names the upload {taken}"
    );
    let mut seen = vec![taken];
    super::eventually_some(
        std::time::Duration::from_secs(180),
        "the upload finishes",
        async || {
            let progress = app.get_json(&location).await;
            let done = matches!(progress["state"].as_str(), Some("active" | "refused"));
            seen.push(progress);
            done.then_some(())
        },
    )
    .await;
    seen
}
