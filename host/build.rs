//! Compiles the built-in rules (`../builtin-rules`, a workspace of
//! `wasm32-unknown-unknown` modules), encodes each as a component and embeds
//! them in the binary, so built-in and custom rules load through the same
//! path and a fresh clone needs nothing but `cargo build`.
//!
//! Why not `wasm32-wasip2`, which yields a component directly: its standard
//! library makes every component import thirteen WASI interfaces (and link
//! shim modules for them) even though no rule uses any, and a fresh instance
//! of such a component costs more to set up on every call. A module built
//! for `wasm32-unknown-unknown` imports nothing; wit-bindgen has already
//! embedded the component type it exports, so encoding it is all that is
//! left. The cost: a panicking built-in traps without its message.

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
        // Its rustflags (the rules' stack size) change the components too.
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

    let out_dir = target_dir.join(TARGET).join("release");
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
    let components_dir = target_dir.join("components");
    std::fs::create_dir_all(&components_dir).unwrap();
    for name in &names {
        let module = out_dir.join(format!("{name}.wasm"));
        assert!(module.is_file(), "missing {}", module.display());
        let component = components_dir.join(format!("{name}.wasm"));
        std::fs::write(&component, encode_component(&module)).unwrap();
        writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            component.display().to_string()
        )
        .unwrap();
    }
    code.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("builtin_rules.rs");
    std::fs::write(dest, code).unwrap();
}

/// The component of a core module that wit-bindgen built (its component
/// type is in a custom section of the module).
fn encode_component(module: &Path) -> Vec<u8> {
    let bytes = std::fs::read(module).unwrap();
    wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("encoding {} as a component: {e:#}", module.display()))
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
