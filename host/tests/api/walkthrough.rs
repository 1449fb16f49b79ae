//! The newcomer's path: the demo's ops account and start-up message,
//! `examples/api-walkthrough.sh`, and the README's own `curl` examples, run
//! against a spawned demo server (the demo data `serve --demo` seeds, on
//! SQLite, through the real router) so none of them can fall behind the
//! API. The scripts need bash, curl and python3; the example rule is built
//! for wasm32-wasip2 like the other rule tests build it.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use recengine::data::demo::{self, DEMO_OPS_EMAIL, DEMO_PASSWORD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, temp_dir,
    wasm::{self, example_rule, merchandising},
    workspace_root,
};

/// What `recengine serve --demo` serves: the demo data seeded into an empty
/// database, models retrained, rate limits on as in the demo.
async fn spawn_demo() -> TestApp {
    let app = TestApp::spawn_without_admin(Backend::Sqlite, |s| {
        s.rate_limit_enabled = true;
    })
    .await;
    assert!(demo::prepare(&app.state).await.unwrap(), "demo data seeded");
    app
}

/// The demo ops account's access token.
async fn ops_token(app: &TestApp) -> String {
    app.login(DEMO_OPS_EMAIL, DEMO_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// GET as `token`, expecting 200 and JSON.
async fn get_as(app: &TestApp, token: &str, path: &str) -> Value {
    let res = app
        .request(Method::GET, path, Some(token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.request(Method::POST, "/api/v1/auth/login", None)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs `bash -c script` (or a file) off the async runtime, so the server
/// on this test's runtime keeps answering it.
async fn bash(args: Vec<String>, cwd: PathBuf, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(&args)
            .current_dir(cwd)
            .envs(env)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap()
}

/// The numbered lines a walkthrough printed, one per step ("12. ...").
fn numbered_steps(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| {
            l.trim_start()
                .split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .collect()
}

fn report(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn the_demo_has_an_ops_account_and_says_what_to_try_next() {
    let app = spawn_demo().await;
    assert_eq!(login_status(&app, DEMO_OPS_EMAIL, DEMO_PASSWORD).await, 200);
    let ops = ops_token(&app).await;
    assert_eq!(get_as(&app, &ops, "/api/v1/auth/me").await["role"], "ops");
    // An ops account reaches what the console shows.
    get_as(&app, &ops, "/api/v1/rules/").await;
    // Seeding is once: a restart with --demo adds no second account.
    assert!(!demo::prepare(&app.state).await.unwrap());

    let default_addr: SocketAddr = "0.0.0.0:8000".parse().unwrap();
    let message = demo::next_steps(&app.state.db, default_addr).await.unwrap();
    assert!(message.contains("http://localhost:8000/docs"), "{message}");
    assert!(
        message.contains(
            "http://localhost:8000/console/   (sign in as ops@example.com / demo-password)"
        ),
        "{message}"
    );
    assert!(
        message.contains("The tour     examples/api-walkthrough.sh "),
        "{message}"
    );
    let message = demo::next_steps(&app.state.db, app.addr).await.unwrap();
    assert!(
        message.contains(&format!(
            "BASE_URL=http://{} examples/api-walkthrough.sh",
            app.addr
        )),
        "{message}"
    );
}

#[tokio::test]
async fn no_ops_account_outside_the_demo() {
    // `serve` without --demo: an empty database stays empty.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(
        login_status(&plain, DEMO_OPS_EMAIL, DEMO_PASSWORD).await,
        401
    );
    let message = demo::next_steps(&plain.state.db, plain.addr).await.unwrap();
    assert!(message.contains("create-admin"), "{message}");
    assert!(!message.contains(DEMO_PASSWORD), "{message}");

    // `serve --demo` on a database that already has a catalogue seeds
    // nothing, the account included.
    plain.create_item("a real product", "books").await;
    assert!(!demo::prepare(&plain.state).await.unwrap());
    assert_eq!(
        login_status(&plain, DEMO_OPS_EMAIL, DEMO_PASSWORD).await,
        401
    );
    let users: Vec<Value> = plain
        .get_json("/api/v1/users/")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(users.len(), 1, "only the admin: {users:?}");
}

/// The example rule, built for wasm32-wasip2, in a file the scripts can
/// copy (so they need not build it a second time).
fn example_rule_file() -> PathBuf {
    let dir = temp_dir("tour-rule");
    let path = dir.join("boost_local_items.wasm");
    std::fs::write(&path, example_rule()).unwrap();
    path
}

/// The example bundle's components, built for wasm32-wasip2, in a folder
/// the tour copies from.
fn merchandising_dir() -> PathBuf {
    let dir = temp_dir("tour-merchandising");
    for name in wasm::MERCHANDISING_RULES {
        std::fs::write(dir.join(format!("{name}.wasm")), merchandising(name)).unwrap();
    }
    dir
}

#[tokio::test]
async fn the_walkthrough_tours_the_demo() {
    let app = spawn_demo().await;
    let rule = example_rule_file();
    let merch = merchandising_dir();
    let output = bash(
        vec!["examples/api-walkthrough.sh".into()],
        workspace_root(),
        vec![
            ("BASE_URL", app.url("")),
            ("RECENGINE", env!("CARGO_BIN_EXE_recengine").into()),
            ("RULE_WASM", rule.display().to_string()),
            ("MERCH_WASM", merch.display().to_string()),
        ],
    )
    .await;
    std::fs::remove_dir_all(rule.parent().unwrap()).ok();
    std::fs::remove_dir_all(&merch).ok();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{stdout}");
    assert!(output.status.success(), "{}", report(&output));
    // Every step said what to notice, in order.
    let steps = numbered_steps(&stdout);
    assert_eq!(steps.len(), 15, "{stdout}");
    for (needle, step) in [
        ("GET /health", 0),
        ("Registered and signed in", 1),
        ("no retrain needed", 2),
        ("rule_trace", 3),
        ("filter_geo_restricted drops", 4),
        ("similar to", 5),
        ("Trending", 6),
        ("The feature store", 7),
        ("in the order they run", 8),
        ("filter_out_of_stock switched off", 9),
        ("Packed and signed", 10),
        ("rolled back", 11),
        ("examples/merchandising", 12),
        ("generate_batch_recommendations", 13),
        ("\"detail\"", 14),
    ] {
        assert!(
            steps[step].contains(needle),
            "step {}: {}",
            step + 1,
            steps[step]
        );
    }

    // What it left behind, seen from the service's side.
    let ops = ops_token(&app).await;
    let rules = get_as(&app, &ops, "/api/v1/rules/").await;
    let rule = |name: &str| {
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        rule("filter_out_of_stock")["enabled"],
        true,
        "switched back on"
    );
    assert_eq!(rule("boost_local_items")["config"]["factor"], 1.5);
    let bundle = get_as(&app, &ops, "/api/v1/rules/bundles/tour").await;
    assert!(
        bundle["active_revision"].as_str().unwrap().ends_with(".1"),
        "{bundle}"
    );
    let history = get_as(&app, &ops, "/api/v1/rules/bundles/tour/history").await;
    assert_eq!(history[0]["action"], "rollback");
    let runs = get_as(
        &app,
        &ops,
        "/api/v1/jobs/runs?job=generate_batch_recommendations",
    )
    .await;
    assert_eq!(runs[0]["status"], "SUCCESS");
    assert_eq!(runs[0]["requested_by"], DEMO_OPS_EMAIL);
}

/// The rule author's path, `examples/author-walkthrough.sh` (the commands
/// of the guide's "From your laptop to production"): `rules new`, the
/// native test, the component's build, `rules test`, keys, pack, sign,
/// verify, the ops token, a shadow run and its report, promotion, the rule
/// in the list and in a trace, a second revision, a rollback, deletion.
/// The builds share the authoring test's target directories, so the SDK
/// compiles once.
#[tokio::test]
async fn the_author_walkthrough_reaches_production() {
    let app = spawn_demo().await;
    let ops = ops_token(&app).await;
    let names = |rules: &Value| -> Vec<String> {
        rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let found = names(&get_as(&app, &ops, "/api/v1/rules/").await);
    let started = std::time::Instant::now();
    let output = bash(
        vec!["examples/author-walkthrough.sh".into()],
        workspace_root(),
        vec![
            ("BASE_URL", app.url("")),
            ("RECENGINE", env!("CARGO_BIN_EXE_recengine").into()),
            (
                "CARGO_TARGET_DIR",
                workspace_root()
                    .join("target/scaffolded-wasm")
                    .display()
                    .to_string(),
            ),
            (
                "NATIVE_TARGET_DIR",
                workspace_root()
                    .join("target/scaffolded-native")
                    .display()
                    .to_string(),
            ),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    println!("{stdout}(in {:.1} s)", started.elapsed().as_secs_f64());
    assert!(output.status.success(), "{}", report(&output));
    // Every step said what to notice, in order.
    let steps = numbered_steps(&stdout);
    assert_eq!(steps.len(), 14, "{stdout}");
    for (needle, step) in [
        ("recengine rules new boost_brands --kind boost", 0),
        ("test result: ok. 1 passed", 1),
        ("boost_brands.wasm", 2),
        ("boost_brands boost 55 applied", 3),
        ("result: [2 (2.080)", 3),
        ("BUNDLE_PUBLIC_KEYS=ops:", 4),
        ("valid, signed by ops", 5),
        ("POST /api/v1/auth/login", 6),
        ("runs in shadow", 7),
        ("compared 8", 8),
        ("shadow/promote", 9),
        ("source bundle:boost-brands@", 9),
        ("boost_brands applied", 10),
        ("response_rank 1", 10),
        ("factor 3.0", 11),
        ("factor 2.0 again", 12),
        ("DELETE /rules/bundles/boost-brands", 13),
    ] {
        assert!(
            steps[step].contains(needle),
            "step {}: {}",
            step + 1,
            steps[step]
        );
    }

    // What it left behind, seen from the service's side: the rule set it
    // found, no shadow, and the deleted bundle's two revisions and history.
    assert_eq!(
        names(&get_as(&app, &ops, "/api/v1/rules/").await),
        found,
        "the rule set as found"
    );
    let shadow = app
        .request(Method::GET, "/api/v1/rules/bundles/shadow", Some(&ops))
        .send()
        .await
        .unwrap();
    assert_eq!(shadow.status(), 404, "no bundle left in shadow");
    let bundle = get_as(&app, &ops, "/api/v1/rules/bundles/boost-brands").await;
    assert_eq!(bundle["active_revision"], Value::Null, "{bundle}");
    assert_eq!(bundle["rules"], json!([]), "{bundle}");
    assert_eq!(bundle["revisions"].as_array().unwrap().len(), 2, "{bundle}");
    let history = get_as(&app, &ops, "/api/v1/rules/bundles/boost-brands/history").await;
    let actions: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    // Newest first; the promotion is a rollback to the shadowed revision.
    assert_eq!(
        actions,
        ["delete", "rollback", "activate", "rollback", "shadow"],
        "{history}"
    );
}

/// The fenced `sh` blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The README's bundle manifest example (the ```json block naming
/// `storefront`).
fn readme_manifest(markdown: &str) -> String {
    let start = markdown
        .find("```json\n{\n  \"name\": \"storefront\"")
        .expect("the README's manifest example")
        + "```json\n".len();
    let end = start + markdown[start..].find("```").unwrap();
    markdown[start..end].to_string()
}

#[tokio::test]
async fn the_readme_curl_examples_run_against_the_demo() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let blocks: Vec<String> = sh_blocks(&readme)
        .into_iter()
        .filter(|b| b.contains("curl ") || b.contains("recengine rules "))
        .collect();
    assert!(blocks.len() >= 5, "{blocks:?}");
    // The quick start's walkthrough line is `the_walkthrough_tours_the_demo`;
    // every other line runs here as written.
    let mut walkthrough_lines = 0;
    let blocks: Vec<String> = blocks
        .into_iter()
        .map(|b| {
            b.lines()
                .filter(|l| {
                    let tour = l.starts_with("examples/api-walkthrough.sh");
                    walkthrough_lines += usize::from(tour);
                    !tour
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert_eq!(
        walkthrough_lines, 1,
        "the quick start names the walkthrough"
    );

    let app = spawn_demo().await;
    let dir = temp_dir("readme");
    // What the bundle guide's `rules pack ./storefront` packs: its manifest
    // and the example rule it names.
    std::fs::create_dir_all(dir.join("storefront/rules")).unwrap();
    std::fs::write(
        dir.join("storefront/manifest.json"),
        readme_manifest(&readme),
    )
    .unwrap();
    std::fs::write(
        dir.join("storefront/rules/boost_local_items.wasm"),
        example_rule(),
    )
    .unwrap();
    // curl fails on any HTTP error (and shows the body); `open` must find
    // the page; `recengine` is the binary under test.
    let prelude = r#"set -euo pipefail
curl() { command curl --fail-with-body -sS "$@"; local rc=$?; echo; return $rc; }
open() { command curl -fsSL -o /dev/null "$1"; }
recengine() { LOG_LEVEL=error "$RECENGINE" "$@"; }
"#;
    let script = format!("{prelude}\n{}", blocks.join("\n"))
        .replace("localhost:8000", &app.addr.to_string());
    let output = bash(
        vec!["-c".into(), script.clone()],
        dir.clone(),
        vec![("RECENGINE", env!("CARGO_BIN_EXE_recengine").into())],
    )
    .await;
    assert!(
        output.status.success(),
        "{}\n--- script\n{script}",
        report(&output)
    );

    // The examples did what they say.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(r#""status":"healthy""#), "{stdout}");
    assert!(stdout.contains(r#""username":"ada""#), "{stdout}");
    assert!(Path::new(&dir.join("storefront-2026-11-26.1.tar.gz")).exists());
    let ops = ops_token(&app).await;
    let bundle = get_as(&app, &ops, "/api/v1/rules/bundles/storefront").await;
    assert_eq!(bundle["active_revision"], "2026-11-26.1", "{bundle}");
    let run = get_as(&app, &ops, "/api/v1/jobs/runs/1").await;
    assert_eq!(run["job"], "retrain_collaborative_model", "{run}");
    std::fs::remove_dir_all(&dir).ok();
}
