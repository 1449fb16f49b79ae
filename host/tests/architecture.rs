//! The layering of `host/src`, checked from its source text so that a
//! change that breaks it fails the build rather than a later reader:
//! - no cycle between the top-level modules (`api`, `store`, `rules`, ...):
//!   each layer uses only the ones below it, so any module can be read, and
//!   changed, knowing only what is beneath it;
//! - SQL lives in `store/`: no query is built outside it, so "where is this
//!   table used" has one answer.
//!
//! The crate root (`lib.rs`, with `AppState`, and `main.rs`) composes every
//! layer and is not a node of the graph.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`store/items.rs` -> `store`).
fn top_module(file: &Path) -> String {
    let rel = file.strip_prefix(src_dir()).expect("under src");
    let first = rel.components().next().expect("non-empty path");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The source without comments (doc comments name paths in prose), line by
/// line; string literals are kept, which at worst adds an edge.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), Some(b)) if b < l => {
                        kept.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, Some(b)) => {
                        kept.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (Some(l), _) => {
                        kept.push_str(&rest[..l]);
                        break;
                    }
                    (None, None) => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The first path segment of every item of a `{...}` group starting at
/// `s[0] == '{'`.
fn group_heads(s: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                if let Some(head) = ident_at(s[item_start..i].trim_start()) {
                    heads.push(head);
                }
                item_start = i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    heads
}

/// Which top-level modules the code refers to through `crate::`.
fn crate_references(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if after.starts_with('{') {
            refs.extend(group_heads(after).into_iter().map(str::to_string));
        } else if let Some(head) = ident_at(after) {
            refs.insert(head.to_string());
        }
        rest = after;
    }
    refs
}

/// Top-level module -> the top-level modules it uses, with one file per
/// edge as evidence.
fn module_graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in &files {
        let from = top_module(file);
        if from == "lib" || from == "main" {
            continue;
        }
        let code = code_of(&fs::read_to_string(file).expect("readable source"));
        for to in crate_references(&code) {
            if to != from && modules.contains(&to) && to != "lib" && to != "main" {
                graph
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

/// A path from `from` back to itself, if any.
fn cycle_through(
    graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
    from: &str,
) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        target: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flat_map(|e| e.keys()) {
            if next == target {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, target, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(graph, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph();
    let mut cycles = Vec::new();
    for module in graph.keys() {
        if let Some(path) = cycle_through(&graph, module) {
            let evidence: Vec<String> = path
                .windows(2)
                .map(|w| {
                    let file = &graph[&w[0]][&w[1]];
                    format!(
                        "  {} -> {} ({})",
                        w[0],
                        w[1],
                        file.strip_prefix(src_dir()).unwrap().display()
                    )
                })
                .collect();
            cycles.push(format!("{}\n{}", path.join(" -> "), evidence.join("\n")));
        }
    }
    assert!(
        cycles.is_empty(),
        "module cycles in host/src (a lower layer reaches up):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn sql_is_written_only_in_store() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let store = src_dir().join("store");
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&store)) {
        let code = code_of(&fs::read_to_string(file).expect("readable source"));
        for needle in [
            "sqlx::query",
            "query_as(",
            "query_as::",
            "query_scalar",
            "QueryBuilder",
        ] {
            if code.contains(needle) {
                offenders.push(format!(
                    "{} uses {needle}",
                    file.strip_prefix(src_dir()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "queries outside host/src/store:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_check() {
    // The parser must find grouped and nested imports, or the checks above
    // pass vacuously.
    let code = code_of(
        "use crate::{a::b, c::{d, e}, f};\n// crate::hidden\nlet x = crate::g::h();\n/* crate::also_hidden */",
    );
    let refs: Vec<String> = crate_references(&code).into_iter().collect();
    assert_eq!(refs, ["a", "c", "f", "g"]);
    let graph = module_graph();
    assert!(
        graph.get("api").is_some_and(|e| e.contains_key("store")),
        "api uses store"
    );
}
