//! The ops console: served from the binary with a strict content policy,
//! and working in a real headless Chromium (`tests/browser/`).

use std::{io::Write, path::Path, process::Command};

use serde_json::json;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp,
    bundles::{bundle, upload},
};

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.get(app.url("/console")).send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], "/console/");
    for (path, kind) in [
        ("/console/", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        let res = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind));
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // The SVG namespace is a name, not an address.
        let body = res
            .text()
            .await
            .unwrap()
            .replace("http://www.w3.org/2000/svg", "");
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
    }
}

/// Skipped, saying so on the terminal, where Chromium or playwright-core
/// is missing, unless `RECENGINE_BROWSER_TEST=required` (set by
/// `scripts/test.sh`, so CI fails instead of skipping).
#[tokio::test]
async fn the_console_works_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(format!("Chromium (no {chromium}; CHROMIUM names another)"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        missing.push(format!(
            "playwright-core (not in {})",
            dir.join("node_modules").display()
        ));
    }
    if !missing.is_empty() {
        let missing = missing.join(" and ");
        let required = std::env::var("RECENGINE_BROWSER_TEST").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "the browser test is required but misses {missing}: run scripts/browser-setup.sh"
        );
        // Straight to the terminal: the test harness keeps a passing
        // test's `eprintln!` to itself, and a skip must not look like a pass.
        writeln!(
            std::io::stderr(),
            "\nSKIPPED console::the_console_works_in_a_real_browser: missing {missing}. \
             scripts/browser-setup.sh installs both; RECENGINE_BROWSER_TEST=required \
             turns this skip into a failure.\n"
        )
        .unwrap();
        return;
    }
    let app = TestApp::spawn(Backend::Sqlite).await;
    // Something for the overview and the jobs to count.
    let item = app.create_item("browser item", "books").await["id"]
        .as_i64()
        .unwrap();
    let user = app.create_user("browsing", json!({})).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.interact(user, item, "view").await.status(), 201);

    // A bundle with two revisions, for the page to roll back.
    for (revision, factor) in [("1", 1.5), ("2", 2.0)] {
        let res = upload(&app, bundle(revision, factor, false)).await;
        assert_eq!(res.status(), 201, "upload revision {revision}");
    }

    let url = app.url("");
    let screenshot = std::env::temp_dir().join("recengine-console.png");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("console.test.mjs")
            .current_dir(&dir)
            .env("CONSOLE_URL", url)
            .env("CONSOLE_EMAIL", ADMIN_EMAIL)
            .env("CONSOLE_PASSWORD", ADMIN_PASSWORD)
            .env("CHROMIUM", chromium)
            .env("SCREENSHOT", &screenshot)
            .env("CONSOLE_BUNDLE", "shop")
            .env("CONSOLE_ROLLBACK_TO", "1")
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("console browser test passed"));
    // The job the browser triggered is in the history, run by a person.
    let runs = app
        .get_json("/api/v1/jobs/runs?job=update_metrics&status=SUCCESS")
        .await;
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(runs[0]["requested_by"], ADMIN_EMAIL);
    // And the rollback the browser clicked is what the fleet runs now.
    let status = app.get_json("/api/v1/rules/bundles/shop").await;
    assert_eq!(status["active_revision"], "1");
    let history = app.get_json("/api/v1/rules/bundles/shop/history").await;
    assert_eq!(history[0]["action"], "rollback");
    assert!(history[0]["actor"].as_str().unwrap().starts_with("user:"));
}

/// `CORS_ORIGINS`: listed origins get the CORS headers (preflight too);
/// others, and every origin when the list is empty, get none.
#[tokio::test]
async fn cross_origin_access_follows_cors_origins() {
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/items/"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let open = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.cors_origins = vec!["https://shop.example.com".into()];
    })
    .await;
    let res = preflight(&open, "https://shop.example.com").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.contains("authorization"));
    let other = preflight(&open, "https://evil.example.com").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let simple = open
        .client
        .get(open.url("/api/v1/items/"))
        .header("Origin", "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(simple.status(), 200);
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://shop.example.com"
    );

    let closed = TestApp::spawn(Backend::Sqlite).await;
    let res = preflight(&closed, "https://shop.example.com")
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
