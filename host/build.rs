//! Compiles the built-in rules (`../builtin-rules`, a workspace of
//! `wasm32-unknown-unknown` core modules), encodes each as a component that
//! imports nothing (`wit-component`), and embeds them in the binary, so
//! built-in and custom rules load through the same path and a fresh clone
//! needs nothing but `cargo build`.
//!
//! Why not `wasm32-wasip2`: a Rust guest built for it imports about 13 WASI
//! interfaces even when it uses none, so every call of it needs a WASI
//! context in its store. The built-ins use nothing from outside, so they are
//! built for the bare target and their stores carry no WASI at all. A
//! built-in that panics still traps (`unreachable`); it has nowhere to
//! write its message, so the host names the panic and the frame instead.

use std::{
    env,
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let rules_dir = root.join("builtin-rules");
    for watched in [
        "builtin-rules/components",
        "builtin-rules/logic",
        "builtin-rules/Cargo.toml",
        // Its target and rustflags (the rules' stack size) change the
        // components too.
        "builtin-rules/.cargo/config.toml",
        "rules-sdk/src",
        "rules-sdk/Cargo.toml",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    ensure_target_installed();
    let target_dir = root.join("target").join("wasm-rules");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&rules_dir)
        .args(["build", "--release", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    // Flags meant for the host must not leak into the Wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the built-in rules");
    assert!(
        status.success(),
        "building the built-in rule components failed"
    );

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let modules = target_dir.join(TARGET).join("release");
    let mut names: Vec<String> = std::fs::read_dir(rules_dir.join("components"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().replace('-', "_"))
        .collect();
    names.sort();
    let mut code = String::from(
        "/// The built-in rule components: (crate name, component bytes).\n\
         pub const BUILTIN_COMPONENTS: &[(&str, &[u8])] = &[\n",
    );
    for name in &names {
        let component = encode_component(&modules.join(format!("{name}.wasm")));
        let dest = out_dir.join(format!("{name}.component.wasm"));
        std::fs::write(&dest, component).unwrap();
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            dest.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("builtin_rules.rs"), code).unwrap();
}

/// The core module at `path` as a component: its WIT world comes from the
/// `component-type` section wit-bindgen embedded. The module must import
/// nothing: a built-in that reached for WASI (a `println!`, a clock) fails
/// the build here rather than trapping at run time.
fn encode_component(path: &Path) -> Vec<u8> {
    let module = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&module) {
        if let wasmparser::Payload::ImportSection(section) =
            payload.unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
        {
            for import in section.into_imports() {
                let import = import.expect("a valid import");
                imports.push(format!("{}::{}", import.module, import.name));
            }
        }
    }
    assert!(
        imports.is_empty(),
        "the built-in rule {} imports {imports:?}; built-ins must import nothing",
        path.display()
    );
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|mut encoder| encoder.encode())
        .unwrap_or_else(|e| panic!("encoding {} as a component: {e:#}", path.display()))
}

/// A fresh machine has no wasm32-unknown-unknown standard library; rustup
/// can add it.
fn ensure_target_installed() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(true);
    if !installed {
        println!("cargo:warning=installing the {TARGET} target with rustup");
        let _ = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status();
    }
}
