//! The rule author's commands, as an author runs them: `recengine rules
//! new` for each kind, its project tested natively, built as a component
//! and checked with `recengine rules test`; and `rules test` on a passing
//! bundle, a contract-breaking one and a trapping one.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::{Value, json};

use crate::helpers::{temp_dir, wasm, workspace_root};

fn recengine(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recengine"))
        .args(args)
        .env("LOG_LEVEL", "error")
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn cargo(args: &[&str], cwd: &Path, target_dir: &Path) -> Output {
    Command::new(env!("CARGO"))
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap()
}

fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_string()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn rules_new_projects_test_build_and_pass_rules_test() {
    let root = temp_dir("rules-new");
    // One build directory for the four projects: the SDK and wit-bindgen
    // compile once.
    let native = workspace_root().join("target/scaffolded-native");
    let wasm_target = workspace_root().join("target/scaffolded-wasm");
    let triple = host_triple();
    let refused = recengine(&["rules", "new", "Bad-Name"], &root);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("a-z, 0-9 and _"),
        "{}",
        text(&refused)
    );
    let python = recengine(&["rules", "new", "py_rule", "--lang", "python"], &root);
    assert!(!python.status.success());
    for kind in ["filter", "boost", "rerank", "promote"] {
        let name = format!("my_{kind}");
        let dir = root.join(&name);
        let out = recengine(
            &[
                "rules",
                "new",
                &name,
                "--kind",
                kind,
                "--dir",
                dir.to_str().unwrap(),
            ],
            &root,
        );
        assert!(out.status.success(), "{}", text(&out));
        let out = cargo(&["test", "--lib", "--target", &triple], &dir, &native);
        assert!(out.status.success(), "{kind}: {}", text(&out));
        assert!(
            text(&out).contains("test result: ok. 1 passed"),
            "{}",
            text(&out)
        );
        let out = cargo(&["build", "--release", "--quiet"], &dir, &wasm_target);
        assert!(out.status.success(), "{kind}: {}", text(&out));
        // Where the project's manifest expects the component.
        let built = wasm_target.join(format!("wasm32-wasip2/release/{name}.wasm"));
        let expected = dir.join(format!("target/wasm32-wasip2/release/{name}.wasm"));
        std::fs::create_dir_all(expected.parent().unwrap()).unwrap();
        std::fs::copy(&built, &expected).unwrap();
        let out = recengine(&["rules", "test", "."], &dir);
        assert!(out.status.success(), "{kind}: {}", text(&out));
        let report = text(&out);
        let line = report
            .lines()
            .find(|l| l.trim_start().starts_with(&name))
            .unwrap_or_else(|| panic!("{report}"));
        assert!(line.contains("applied"), "{report}");
        assert!(line.contains(kind), "{report}");
        // The bundle it describes packs.
        let out = recengine(&["rules", "pack", ".", "--out", "b.tar.gz"], &dir);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            !text(&out).contains("SECRET_KEY"),
            "no key warning: {}",
            text(&out)
        );
    }
    std::fs::remove_dir_all(root).ok();
}

/// A folder holding `manifest` and the components it names.
fn bundle_dir(manifest: Value, components: &[(&str, Vec<u8>)]) -> PathBuf {
    let dir = temp_dir("rules-test");
    for (file, bytes) in components {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    dir
}

#[tokio::test]
async fn rules_test_passes_a_good_bundle_and_fails_a_bad_one() {
    // The example bundle passes, over the sample and over given items.
    let components: Vec<(String, Vec<u8>)> = wasm::MERCHANDISING_RULES
        .iter()
        .map(|n| (format!("{n}.wasm"), wasm::merchandising(n)))
        .collect();
    let borrowed: Vec<(&str, Vec<u8>)> = components
        .iter()
        .map(|(f, b)| (f.as_str(), b.clone()))
        .collect();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(workspace_root().join("examples/merchandising/manifest.json")).unwrap(),
    )
    .unwrap();
    let dir = bundle_dir(manifest, &borrowed);
    let out = recengine(&["rules", "test", "."], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("within_budget"), "{}", text(&out));
    std::fs::write(
        dir.join("items.json"),
        json!([
            {"item_id": 1, "score": 0.9, "features": {"price": 80, "in_stock": true}},
            {"item_id": 2, "score": 0.8, "features": {"price": 20, "in_stock": true}}
        ])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("context.json"),
        json!({"extra": {"budget": "50"}}).to_string(),
    )
    .unwrap();
    let out = recengine(
        &[
            "rules",
            "test",
            ".",
            "--items-file",
            "items.json",
            "--context-file",
            "context.json",
            "--json",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<i64> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2], "{report}");
    let budget = report["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rule"] == "within_budget")
        .unwrap();
    assert_eq!(budget["dropped"], json!([1]));
    std::fs::remove_dir_all(&dir).ok();

    // A rule that breaks its contract, and one that traps: refused, exit 1,
    // the reason printed.
    for (component, mode, reason) in [
        ("hostile_filter", 4.0, "broke the filter contract"),
        ("hostile_boost", 0.0, "trapped"),
    ] {
        let dir = bundle_dir(
            json!({"name": "bad", "revision": "1",
                   "rules": [{"component": "rule.wasm", "config": {"mode": mode}}]}),
            &[("rule.wasm", wasm::hostile(component))],
        );
        let out = recengine(&["rules", "test", "."], &dir);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("REFUSED"), "{}", text(&out));
        assert!(text(&out).contains(reason), "{}", text(&out));
        std::fs::remove_dir_all(&dir).ok();
    }
}
