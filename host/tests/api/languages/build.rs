//! Builds the Python and JavaScript example rules from source with the
//! toolchains `scripts/lang-toolchains.sh` installs (the API tests and the
//! rules bench share this file). A build is kept under
//! `target/lang-rules/`, named by the SHA-256 of everything that went into
//! it (sources, WIT, toolchain pins, arguments), so an unchanged example is
//! built once, not at every run.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use sha2::{Digest, Sha256};

/// A rule to build: which example, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `examples/python-margin-boost`.
    Python,
    /// `examples/javascript-margin-boost`, built as its `npm run build`
    /// does (without the WASI features a rule may not import).
    JavaScript,
    /// The same JavaScript, built with componentize-js's defaults: it
    /// imports `wasi:http`, which the host refuses.
    JavaScriptDefaults,
    /// The JavaScript rule under another name, so that it can be active
    /// beside the Python one.
    JavaScriptNamed(&'static str),
    /// A Python rule of the tests, `host/tests/fixtures/lang-rules/<name>`.
    PythonFixture(&'static str),
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example(source: Source) -> PathBuf {
    if let Source::PythonFixture(name) = source {
        return root().join("host/tests/fixtures/lang-rules").join(name);
    }
    root().join(match source {
        Source::Python => "examples/python-margin-boost",
        _ => "examples/javascript-margin-boost",
    })
}

fn tool(source: Source) -> PathBuf {
    match source {
        Source::Python | Source::PythonFixture(_) => {
            root().join(".tools/python/bin/componentize-py")
        }
        _ => example(source).join("node_modules/.bin/componentize-js"),
    }
}

/// Whether the toolchains are installed; when they are not, the caller
/// skips unless `RECENGINE_LANG_TEST=required` (scripts/test.sh sets it),
/// in which case this panics with the command that installs them.
pub fn toolchains_ready(what: &str) -> bool {
    let missing: Vec<String> = [Source::Python, Source::JavaScript]
        .into_iter()
        .map(tool)
        .filter(|t| !t.exists())
        .map(|t| t.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{what}: the Python and JavaScript rule toolchains are not installed ({}); \
         run scripts/lang-toolchains.sh",
        missing.join(", ")
    );
    if std::env::var("RECENGINE_LANG_TEST").is_ok_and(|v| v == "required") {
        panic!("{message} (RECENGINE_LANG_TEST=required)");
    }
    eprintln!("SKIPPED {message}");
    false
}

fn args(source: Source, out: &Path) -> Vec<String> {
    let wit = root().join("wit/rules.wit").display().to_string();
    let out = out.display().to_string();
    let mut args: Vec<String> = match source {
        Source::Python | Source::PythonFixture(_) => vec![
            "-d".into(),
            wit,
            "-w".into(),
            "rule".into(),
            "componentize".into(),
            "app".into(),
            "-o".into(),
            out,
        ],
        _ => vec![
            "--wit".into(),
            wit,
            "--world-name".into(),
            "rule".into(),
            "-o".into(),
            out,
            "rule.js".into(),
        ],
    };
    if matches!(source, Source::JavaScript | Source::JavaScriptNamed(_)) {
        for feature in ["stdio", "random", "clocks", "http", "fetch-event"] {
            args.extend(["-d".into(), feature.into()]);
        }
    }
    args
}

/// The digest of what a build depends on.
fn inputs_digest(source: Source) -> String {
    let dir = example(source);
    let mut hash = Sha256::new();
    hash.update(format!("{source:?}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "py" || x == "js" || x == "json" || x == "txt")
        })
        .collect();
    files.push(root().join("wit/rules.wit"));
    files.sort();
    for file in files {
        hash.update(file.file_name().unwrap().as_encoded_bytes());
        hash.update(std::fs::read(&file).unwrap());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The component built from `source`, from `target/lang-rules/` when the
/// same inputs were built before. Panics (with the tool's output) when the
/// build fails.
pub fn component(source: Source) -> Vec<u8> {
    let cache = root().join("target/lang-rules");
    std::fs::create_dir_all(&cache).unwrap();
    let built = cache.join(format!("{}.wasm", inputs_digest(source)));
    if let Ok(bytes) = std::fs::read(&built) {
        return bytes;
    }
    // Built under a unique name, renamed into place: a test run and a
    // bench may build at the same time.
    let tmp = cache.join(format!("{}.tmp.wasm", uuid::Uuid::new_v4()));
    let workdir = match source {
        Source::JavaScriptNamed(name) => {
            let dir = cache.join(format!("{}.src", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let rule = std::fs::read_to_string(example(source).join("rule.js")).unwrap();
            let renamed = rule.replace("name: \"boost_high_margin\"", &format!("name: {name:?}"));
            assert_ne!(rule, renamed, "rule.js names its rule");
            std::fs::write(dir.join("rule.js"), renamed).unwrap();
            std::fs::copy(
                example(source).join("margin-boost.js"),
                dir.join("margin-boost.js"),
            )
            .unwrap();
            dir
        }
        _ => example(source),
    };
    let output = Command::new(tool(source))
        .current_dir(&workdir)
        .args(args(source, &tmp))
        .output()
        .expect("running the rule toolchain");
    assert!(
        output.status.success(),
        "building {source:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if workdir != example(source) {
        std::fs::remove_dir_all(&workdir).ok();
    }
    std::fs::rename(&tmp, &built).unwrap();
    std::fs::read(&built).unwrap()
}
