//! `recengine rules new`: a rule project from a template, ready to test
//! natively, build as a component, pack and check: its crate (depending on
//! the SDK by path or git), the rule with a native test, a bundle manifest
//! naming the built component, and a README with the commands.

use std::path::{Path, PathBuf};

use recengine_rules_sdk::Kind;

/// Where the new project gets the SDK from.
#[derive(Debug, Clone)]
pub enum SdkSource {
    Path(PathBuf),
    Git(String),
}

impl SdkSource {
    fn dependency(&self) -> String {
        match self {
            SdkSource::Path(p) => format!("{{ path = {:?} }}", p.display().to_string()),
            SdkSource::Git(url) => format!("{{ git = {url:?} }}"),
        }
    }
}

/// Checks a rule name: what the host accepts (1-64 of a-z, 0-9, `_`,
/// starting with a letter).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "rule name {name:?} must be 1-64 characters of a-z, 0-9 and _, starting with a letter"
        ))
    }
}

/// Writes the project for rule `name` of `kind` into `dir` (which must not
/// exist yet or be empty); returns the files written.
pub fn scaffold(
    name: &str,
    kind: Kind,
    dir: &Path,
    sdk: &SdkSource,
) -> Result<Vec<PathBuf>, String> {
    check_name(name)?;
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .next()
            .is_some()
    {
        return Err(format!("{} exists and is not empty", dir.display()));
    }
    let package = name.replace('_', "-");
    let files = [
        ("Cargo.toml", cargo_toml(&package, sdk)),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        (".gitignore", "/target\n".to_string()),
        ("src/lib.rs", rule_source(name, kind)),
        ("manifest.json", manifest(name)),
        ("README.md", readme(name, kind)),
    ];
    let mut written = Vec::new();
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn cargo_toml(package: &str, sdk: &SdkSource) -> String {
    format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2024"
publish = false

# A rule is a library built as a WebAssembly component (cdylib) and tested
# natively (rlib).
[lib]
crate-type = ["cdylib", "rlib"]

# A project of its own, not part of any enclosing workspace.
[workspace]

[dependencies]
recengine-rules-sdk = {}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
"#,
        sdk.dependency()
    )
}

const CARGO_CONFIG: &str = r#"[build]
target = "wasm32-wasip2"

# A rule needs little stack; 64 KiB keeps a call's memory small, which the
# service resets cheaply between calls.
[target.wasm32-wasip2]
rustflags = ["-C", "link-arg=-zstack-size=65536"]
"#;

fn manifest(name: &str) -> String {
    let manifest = serde_json::json!({
        "name": name.replace('_', "-"),
        "revision": "1",
        "rules": [{
            "component": format!("target/wasm32-wasip2/release/{name}.wasm"),
            "name": name,
            "config": {},
        }],
    });
    serde_json::to_string_pretty(&manifest).expect("JSON") + "\n"
}

fn type_name(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The rule's code and tests, one template per kind.
fn rule_source(name: &str, kind: Kind) -> String {
    let ty = type_name(name);
    let body = match kind {
        Kind::Filter => FILTER,
        Kind::Boost => BOOST,
        Kind::Rerank => RERANK,
        Kind::Promote => PROMOTE,
    };
    body.replace("RULE_NAME", name).replace("RuleType", &ty)
}

const FILTER: &str = r#"//! `RULE_NAME`: drops the items whose `price` (an item attribute) is above
//! the `max_price` parameter; items without a price stay.

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, export_rule, input};

pub struct RuleType;

impl Rule for RuleType {
    fn metadata() -> Metadata {
        Metadata::new("RULE_NAME", Kind::Filter, 80, "Drops items priced above max_price")
            .input(input::item_number("price"))
            .param(Param::number("max_price", "The highest price shown", 100.0, 0.0, 1e9))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let max = params.number("max_price");
        Ok(Outcome::drop_where(req, |c| c.number("price").is_some_and(|p| p > max)))
    }
}

export_rule!(RuleType);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, run};

    use super::*;

    #[test]
    fn items_above_max_price_are_dropped() {
        let req = RequestBuilder::new()
            .item(Item::new(1, 0.9).attr("price", 250.0))
            .item(Item::new(2, 0.8).attr("price", 40.0))
            .item(Item::new(3, 0.7))
            .build();
        assert_eq!(run::<RuleType>(&req, &[]).unwrap().ids(), vec![2, 3]);
        let cheap = run::<RuleType>(&req, &[("max_price", 10.0)]).unwrap();
        assert_eq!(cheap.ids(), vec![3]);
    }
}
"#;

const BOOST: &str = r#"//! `RULE_NAME`: multiplies by `factor` the score of items whose `brand` (an
//! item attribute) is one of the `brands` parameter.

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, export_rule, input};

pub struct RuleType;

impl Rule for RuleType {
    fn metadata() -> Metadata {
        Metadata::new("RULE_NAME", Kind::Boost, 55, "Boosts the brands listed in brands")
            .input(input::item_text("brand"))
            .param(Param::strings("brands", "Brands to boost", &["acme"]))
            .param(Param::number("factor", "Multiplier", 1.5, 0.0, 100.0))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let brands = params.strings("brands");
        let factor = params.number("factor");
        Ok(Outcome::rescore(req, |c| {
            let listed = c.text("brand").is_some_and(|b| brands.contains(&b));
            c.score() * if listed { factor } else { 1.0 }
        }))
    }
}

export_rule!(RuleType);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{
        ParamValue,
        testing::{Item, RequestBuilder, run, run_with},
    };

    use super::*;

    #[test]
    fn listed_brands_are_boosted_and_move_up() {
        let req = RequestBuilder::new()
            .item(Item::new(1, 1.0).attr("brand", "zeta"))
            .item(Item::new(2, 0.8).attr("brand", "acme"))
            .item(Item::new(3, 0.5))
            .build();
        let ranked = run::<RuleType>(&req, &[]).unwrap();
        assert_eq!(ranked.ids(), vec![2, 1, 3]);
        assert_eq!(ranked.score_of(2), Some(0.8 * 1.5));
        let zeta = run_with::<RuleType>(&req, &[("brands", ParamValue::from(["zeta"]))]).unwrap();
        assert_eq!(zeta.score_of(1), Some(1.5));
    }
}
"#;

const RERANK: &str = r#"//! `RULE_NAME`: at most `max_per_brand` items of one `brand` (an item
//! attribute) lead the list; the others follow in their order.

use std::collections::HashMap;

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, export_rule, input};

pub struct RuleType;

impl Rule for RuleType {
    fn metadata() -> Metadata {
        Metadata::new("RULE_NAME", Kind::Rerank, 15, "At most max_per_brand items of a brand lead")
            .input(input::item_text("brand"))
            .param(Param::number("max_per_brand", "Items of one brand before the others", 2.0, 1.0, 100.0))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let max = params.number("max_per_brand") as usize;
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let (mut head, mut tail) = (Vec::new(), Vec::new());
        for c in req.candidates() {
            let position = c.position() as u32;
            match c.text("brand") {
                Some(brand) if *seen.get(brand).unwrap_or(&0) >= max => tail.push(position),
                Some(brand) => {
                    *seen.entry(brand).or_insert(0) += 1;
                    head.push(position);
                }
                None => head.push(position),
            }
        }
        head.extend(tail);
        Ok(Outcome::Reordered(head))
    }
}

export_rule!(RuleType);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, run};

    use super::*;

    #[test]
    fn a_third_item_of_a_brand_waits() {
        let req = RequestBuilder::new()
            .item(Item::new(1, 0.9).attr("brand", "acme"))
            .item(Item::new(2, 0.8).attr("brand", "acme"))
            .item(Item::new(3, 0.7).attr("brand", "acme"))
            .item(Item::new(4, 0.6).attr("brand", "zeta"))
            .build();
        assert_eq!(run::<RuleType>(&req, &[]).unwrap().ids(), vec![1, 2, 4, 3]);
    }
}
"#;

const PROMOTE: &str = r#"//! `RULE_NAME`: places the items of the `item_ids` parameter (ids as text)
//! from `position` on (1 is the top). The service looks them up, runs them
//! through the safety and stock filters, and marks them `promoted`.

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Placement, Request, Rule, export_rule};

pub struct RuleType;

impl Rule for RuleType {
    fn metadata() -> Metadata {
        Metadata::new("RULE_NAME", Kind::Promote, 70, "Places item_ids from position on")
            .param(Param::strings("item_ids", "Items to place, in order", &[]))
            .param(Param::number("position", "Where the first goes (1 is the top)", 1.0, 1.0, 100.0))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let first = params.number("position") as u32;
        let placements = params
            .strings("item_ids")
            .iter()
            .filter_map(|id| id.trim().parse::<i64>().ok())
            .filter(|id| !req.is_excluded(*id))
            .enumerate()
            .map(|(n, id)| Placement::at(id, first + n as u32))
            .collect();
        Ok(Outcome::Promoted(placements))
    }
}

export_rule!(RuleType);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{
        ParamValue, Placement,
        testing::{Item, RequestBuilder, run_with},
    };

    use super::*;

    #[test]
    fn listed_items_are_placed_in_order() {
        let req = RequestBuilder::new().exclude(&[8]).item(Item::new(1, 0.9)).build();
        let ranked = run_with::<RuleType>(
            &req,
            &[("item_ids", ParamValue::from(["7", "8", "9"])), ("position", ParamValue::Number(2.0))],
        )
        .unwrap();
        assert_eq!(ranked.promoted(), &[Placement::at(7, 2), Placement::at(9, 3)]);
    }
}
"#;

fn readme(name: &str, kind: Kind) -> String {
    format!(
        r#"# {name}

A recengine business rule ({kind}), written against the rules SDK
(contract `recengine:rules@0.2.0`).

```sh
rustup target add wasm32-wasip2                 # once per machine
cargo test --lib --target $(rustc -vV | sed -n 's/^host: //p')   # native tests
cargo build --release                           # the component
recengine rules test .                          # run it with the built-in rules over sample items
recengine rules pack . --out {name}.tar.gz      # the bundle manifest.json describes
```

Upload the bundle as an ops user (`POST /api/v1/rules/bundles`, body the
`.tar.gz`, `content-type: application/gzip`), or drop it in the service's
`RULES_DIR`. The rule-author guide (`examples/README.md` in the recengine
repository) goes from here to production: signing, shadow runs, rollback.
"#,
        kind = kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_what_the_host_accepts() {
        assert!(check_name("cheap_first").is_ok());
        assert!(check_name("Cheap").is_err());
        assert!(check_name("1st").is_err());
        assert!(check_name("").is_err());
        assert_eq!(type_name("cheap_first_2"), "CheapFirst2");
    }

    #[test]
    fn a_project_is_written_once() {
        let dir = std::env::temp_dir().join(format!("scaffold-{}", std::process::id()));
        let sdk = SdkSource::Path("/sdk".into());
        let files = scaffold("cheap_first", Kind::Filter, &dir, &sdk).unwrap();
        assert_eq!(files.len(), 6);
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct CheapFirst;"));
        assert!(lib.contains("\"cheap_first\""));
        let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
        assert!(manifest.contains("target/wasm32-wasip2/release/cheap_first.wasm"));
        assert!(scaffold("cheap_first", Kind::Filter, &dir, &sdk).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
