//! The SDK as an outside rule author meets it: a crate made with `cargo new`
//! in a temporary directory outside this repository, depending on the SDK
//! exactly as the crate's README says (its `[lib]`/`[dependencies]` block,
//! with the real path) and holding the README's rule, is unit-tested
//! natively and built as a `wasm32-wasip2` component. And the crate's
//! package holds its WIT, so it builds from crates.io or a copy too.
//!
//! The outside crate builds in `target/outside-rule` (under
//! `$CARGO_TARGET_DIR` when that is set), so a second run reuses the first
//! one's build.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The SDK crate's directory.
fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's root (the workspace the SDK is a member of).
fn repo_dir() -> PathBuf {
    sdk_dir()
        .parent()
        .expect("rules-sdk/ has a parent")
        .to_path_buf()
}

/// A directory of the build's target dir for these tests' own builds: not
/// the one the running `cargo test` holds locked.
fn target_dir(name: &str) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join(name),
        _ => repo_dir().join("target").join(name),
    }
}

/// `cargo`, the one running these tests, with the flags the outer build
/// was given taken away (they are meant for it, and some, like
/// instrumentation, would not build for wasm32).
fn cargo(dir: &Path, target_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    cmd
}

/// Runs `cmd`, panicking with its output if it fails.
fn run(mut cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    out
}

/// The host's target triple, as cargo reports it.
fn host_triple() -> String {
    let mut version = cargo(&sdk_dir(), &target_dir("outside-rule"));
    version.arg("-vV");
    let out = run(version);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("`cargo -vV` prints the host triple")
        .trim()
        .to_string()
}

/// The fenced code blocks of `markdown` in `lang`, in order.
fn code_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start() == format!("```{lang}") => current = Some(String::new()),
            Some(_) if line.trim_start() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The README's manifest block for a path dependency, with the real path.
fn documented_manifest(readme: &str, sdk: &Path) -> String {
    const DEPENDENCY: &str = "recengine-rules-sdk = { path = \"";
    let block = code_blocks(readme, "toml")
        .into_iter()
        .find(|b| b.contains(DEPENDENCY))
        .expect("rules-sdk/README.md documents the path dependency in a ```toml block");
    let sdk = sdk.to_str().expect("a UTF-8 path").replace('\\', "\\\\");
    block
        .lines()
        .map(|line| match line.strip_prefix(DEPENDENCY) {
            Some(rest) => {
                let (_, after) = rest.split_once('"').expect("the path is quoted");
                format!("{DEPENDENCY}{sdk}\"{after}\n")
            }
            None => format!("{line}\n"),
        })
        .collect()
}

/// Removes the directory when dropped, whether the test passed or not.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_rule_crate_outside_the_workspace_tests_and_builds_a_component() {
    let name = "boost-cheap";
    let sdk = sdk_dir();
    let readme = fs::read_to_string(sdk.join("README.md")).unwrap();

    let tmp =
        TempDir(env::temp_dir().join(format!("recengine-outside-rule-{}", std::process::id())));
    let _ = fs::remove_dir_all(&tmp.0);
    fs::create_dir_all(&tmp.0).unwrap();
    assert!(
        !tmp.0
            .canonicalize()
            .unwrap()
            .starts_with(repo_dir().canonicalize().unwrap()),
        "the temporary directory {} must be outside the repository",
        tmp.0.display()
    );
    let target = target_dir("outside-rule");

    // `cargo new`, as the author would.
    let mut new = cargo(&tmp.0, &target);
    new.args(["new", "--lib", "--vcs", "none", name]);
    run(new);
    let krate = tmp.0.join(name);

    // Cargo.toml: the generated [package], then the README's block, and a
    // [workspace] of its own so cargo looks for no parent workspace.
    let generated = fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let package = generated.split("[dependencies]").next().unwrap().trim_end();
    let manifest = format!(
        "{package}\n\n{}\n[workspace]\n",
        documented_manifest(&readme, &sdk)
    );
    fs::write(krate.join("Cargo.toml"), manifest).unwrap();

    // src/lib.rs: the README's rule, with its unit test.
    let rules = code_blocks(&readme, "rust");
    let [rule] = rules.as_slice() else {
        panic!(
            "rules-sdk/README.md has one ```rust block (the rule), not {}",
            rules.len()
        );
    };
    assert!(rule.contains("export_rule!") && rule.contains("#[test]"));
    fs::write(krate.join("src/lib.rs"), rule).unwrap();

    // The workspace's lock file pins the SDK's dependencies to the versions
    // the workspace builds with (and needs no registry update when they
    // are cached); cargo drops the workspace's other packages from it.
    fs::copy(repo_dir().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    // Unit tests, natively.
    let mut test = cargo(&krate, &target);
    test.args(["test", "--lib", "--target", &host_triple()]);
    let out = run(test);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("cheap_items_move_up ... ok"),
        "the rule's unit test ran:\n{report}"
    );

    // The component.
    let mut build = cargo(&krate, &target);
    build.args(["build", "--release", "--target", "wasm32-wasip2"]);
    run(build);
    let wasm = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let bytes = fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()));
    // `\0asm`, then a component's version and layer (a core module has
    // 01 00 00 00).
    assert_eq!(
        bytes.get(..8),
        Some(&b"\0asm\x0d\x00\x01\x00"[..]),
        "{} is a component",
        wasm.display()
    );
}

#[test]
fn the_package_holds_the_sources_the_wit_and_the_readme() {
    let mut list = cargo(&sdk_dir(), &target_dir("outside-rule-package"));
    list.args(["package", "--list", "--allow-dirty"]);
    let out = run(list);
    let files = String::from_utf8_lossy(&out.stdout);
    let files: Vec<&str> = files.lines().map(str::trim).collect();
    for want in ["wit/rules.wit", "src/lib.rs", "README.md"] {
        assert!(
            files.contains(&want),
            "`cargo package --list` lists {want}: {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.starts_with("tests/")),
        "the tests, which need the repository, stay out of the package: {files:?}"
    );
}
