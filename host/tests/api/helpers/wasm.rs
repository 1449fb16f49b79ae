//! Test components built from source: the hostile fixtures and the example
//! rule. Built once per test run (cargo caches between runs).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, OnceLock},
};

use recengine::{
    AppState,
    rules::registry::{ActiveRule, FailurePolicy, param_from_json},
};

use super::workspace_root;

fn build(workspace: &Path, target_dir: &str) -> PathBuf {
    let target = workspace_root().join("target").join(target_dir);
    let status = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("running cargo");
    assert!(status.success(), "building {} failed", workspace.display());
    target.join("wasm32-wasip2").join("release")
}

/// The release folder of a fixture workspace, built on first use. The cell
/// runs one build and makes concurrent tests wait for it.
fn built(cell: &'static OnceLock<PathBuf>, workspace: &str, target: &str) -> PathBuf {
    cell.get_or_init(|| build(&workspace_root().join(workspace), target))
        .clone()
}

/// The bytes of a hostile fixture component (`hostile_filter`, ...).
pub fn hostile(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = built(&DIR, "host/tests/fixtures/hostile-rules", "hostile-rules");
    std::fs::read(dir.join(format!("{name}.wasm"))).unwrap()
}

/// The example rule from `examples/boost-local-items`.
pub fn example_rule() -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = built(&DIR, "examples/boost-local-items", "example-rules");
    std::fs::read(dir.join("boost_local_items.wasm")).unwrap()
}

/// The rules of the example bundle `examples/merchandising`, as its
/// manifest lists them.
pub const MERCHANDISING_RULES: [&str; 8] = [
    "within_budget",
    "boost_high_margin",
    "boost_bought_brands",
    "demote_low_rated",
    "premium_for_premium_users",
    "brand_cap",
    "campaign_pin",
    "sponsored_slot",
];

/// A component of the example bundle `examples/merchandising`
/// (`within_budget`, `campaign_pin`, ...).
pub fn merchandising(name: &str) -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = built(&DIR, "examples/merchandising", "example-merchandising");
    std::fs::read(dir.join(format!("{name}.wasm"))).unwrap()
}

/// A component built against contract 0.1 with plain wit-bindgen
/// (`host/tests/fixtures/contract-0.1`): `legacy_boost_local`.
pub fn legacy_rule() -> Vec<u8> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = built(&DIR, "host/tests/fixtures/contract-0.1", "contract-0.1");
    std::fs::read(dir.join("legacy_boost_local.wasm")).unwrap()
}

/// Adds a component to the app's active rules with the given parameter
/// values (numbers; 0 or 1 for a flag) and policy.
pub fn add_rule(state: &AppState, bytes: &[u8], config: Vec<f64>, policy: FailurePolicy) -> String {
    let compiled = state.rules.engine.load(bytes).expect("component loads");
    let name = compiled.metadata.name.clone();
    state
        .rules
        .update(|rules| {
            let mut rule = ActiveRule::from_compiled(
                Arc::clone(&compiled),
                "test",
                state.rules.engine.limits(),
            );
            rule.config = compiled
                .metadata
                .params
                .iter()
                .zip(&config)
                .map(|(p, v)| param_from_json(p, &serde_json::json!(v)).expect("a valid value"))
                .collect();
            rule.policy = policy;
            rules.retain(|r| r.name() != name);
            rules.push(rule);
            Ok::<_, ()>(())
        })
        .unwrap();
    name
}
