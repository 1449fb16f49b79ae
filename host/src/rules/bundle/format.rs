//! The bundle on disk and on the wire: a gzip'd tar holding `manifest.json`,
//! the components it names, and optionally `signature.json`.
//!
//! ```text
//! manifest.json        { name, revision, rules: [{ component, sha256, ... }] }
//! rules/boost.wasm     the components (any paths the manifest names)
//! signature.json       { key_id, signature }  ed25519 over manifest.json's bytes
//! ```
//!
//! The manifest carries every component's SHA-256, so a signature over the
//! manifest covers the components too; a file not named by the manifest is
//! refused. Unpacking is defensive: sizes are capped before and after
//! decompression, paths must be plain and relative, only regular files.

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::Refusal;
pub use crate::config::BundleCaps;
use crate::rules::registry::FailurePolicy;

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "signature.json";
pub const MAX_FILES: usize = 64;

/// What a bundle declares. Unknown fields are refused, so a typo is an
/// error rather than a silently ignored setting.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The bundle's name: its rules replace the previous revision's.
    /// Letters, digits, `-`, `_`, `.`; at most 64.
    pub name: String,
    /// Free text, unique per bundle name (e.g. a date or a git hash).
    pub revision: String,
    /// The rules, at least one.
    pub rules: Vec<RuleEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// Path of the component inside the bundle.
    pub component: String,
    /// Hex SHA-256 of the component; `rules pack` fills it in.
    #[serde(default)]
    pub sha256: String,
    /// The rule's name as its metadata reports it; checked when given.
    #[serde(default)]
    pub name: Option<String>,
    /// Default: the rule's own default priority. -10000 to 10000.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Default: true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Parameter values by name (numbers, booleans, strings or lists of
    /// strings, as each parameter's type says); the others keep the rule's
    /// defaults.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: BTreeMap<String, serde_json::Value>,
    /// Default: what the rule's metadata asks for.
    #[serde(default)]
    pub failure_policy: Option<FailurePolicy>,
    /// Default: the service's limits; may only be tighter.
    #[serde(default)]
    pub limits: RuleLimits,
    /// Calls may reuse an instance of the rule instead of a fresh one each
    /// (default false). For interpreted rules (Python, JavaScript) whose
    /// fresh instance costs more than the call: the instance's globals then
    /// carry from one request, and one user, to the next (an instance serves
    /// at most 1,000 calls, and none after a failed call).
    #[serde(default)]
    pub reuse_instances: bool,
    /// A promote rule's items pass every safety (fail-closed) filter and,
    /// by default, `filter_out_of_stock` and `filter_excluded`; this names
    /// those of the latter the rule's items may skip. Safety filters cannot
    /// be named.
    #[serde(default)]
    pub promote_skip_filters: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleLimits {
    /// Wall-clock budget per call, ms (default `RULE_DEADLINE_MS`);
    /// 1 to 10000, and no more than the service's.
    pub deadline_ms: Option<u64>,
    /// Memory per call, MiB (default `RULE_MEMORY_MB`); 1 to 256, and no
    /// more than the service's.
    pub memory_mb: Option<u64>,
}

/// The ranges numeric manifest fields are checked against before use, so a
/// value never wraps or truncates into something else (a `memory_mb` of
/// 2^44+32 shifted into bytes would otherwise mean 32 MiB).
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i64> = -10_000..=10_000;
pub const DEADLINE_MS_RANGE: std::ops::RangeInclusive<u64> = 1..=10_000;
pub const MEMORY_MB_RANGE: std::ops::RangeInclusive<u64> = 1..=256;

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Which configured public key verifies it.
    pub key_id: String,
    /// Base64 ed25519 signature of `manifest.json`'s exact bytes.
    pub signature: String,
}

/// An unpacked bundle: the manifest's exact bytes (what is signed), the
/// parsed manifest, the files, the signature if any, and the archive's
/// digest (its identity).
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest_bytes: Vec<u8>,
    pub manifest: Manifest,
    pub files: HashMap<String, Vec<u8>>,
    pub signature: Option<Signature>,
    pub digest: String,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn plain_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 200
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

/// Reads and checks an archive. Every refusal says why.
pub fn unpack(archive: &[u8], caps: BundleCaps) -> Result<Bundle, Refusal> {
    if archive.len() > caps.archive_bytes {
        return Err(Refusal::Size(format!(
            "the bundle is {} bytes; at most {} are accepted (MAX_BUNDLE_BYTES)",
            archive.len(),
            caps.archive_bytes
        )));
    }
    let digest = sha256_hex(archive);
    let gz = flate2::read::GzDecoder::new(archive);
    // The files' sizes are checked against the cap as their headers are
    // read; this bounds the stream itself (headers and padding included)
    // should a header lie.
    let tar_overhead = (MAX_FILES as u64 + 8) * 2048;
    let mut tar = tar::Archive::new(gz.take(caps.unpacked_bytes.saturating_add(tar_overhead)));
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut total = 0u64;
    let not_a_tar =
        |e: std::io::Error| Refusal::Malformed(format!("not a gzip'd tar archive: {e}"));
    let too_large = || {
        Refusal::Size(format!(
            "unpacks to more than {} bytes (MAX_BUNDLE_UNPACKED_BYTES)",
            caps.unpacked_bytes
        ))
    };
    let entries = tar.entries().map_err(not_a_tar)?;
    for entry in entries {
        let mut entry = entry.map_err(not_a_tar)?;
        let kind = entry.header().entry_type();
        let path = entry
            .path()
            .map_err(|e| Refusal::Malformed(format!("bad path in the archive: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(Refusal::Invalid(format!(
                "{path}: only regular files are allowed"
            )));
        }
        if !plain_path(&path) {
            return Err(Refusal::Malformed(format!(
                "{path:?}: paths must be relative, without '..'"
            )));
        }
        if files.len() >= MAX_FILES {
            return Err(Refusal::Invalid(format!("more than {MAX_FILES} files")));
        }
        let declared = entry.header().size().unwrap_or(u64::MAX);
        if total.saturating_add(declared) > caps.unpacked_bytes {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| Refusal::Invalid(format!("{path}: {e}")))?;
        total += bytes.len() as u64;
        if total > caps.unpacked_bytes {
            return Err(too_large());
        }
        if files.insert(path.clone(), bytes).is_some() {
            return Err(Refusal::Invalid(format!("{path} appears twice")));
        }
    }
    let manifest_bytes = files
        .remove(MANIFEST)
        .ok_or_else(|| Refusal::Malformed(format!("no {MANIFEST} at the top of the bundle")))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| Refusal::Malformed(format!("{MANIFEST}: {e}")))?;
    let signature = match files.remove(SIGNATURE) {
        Some(bytes) => Some(
            serde_json::from_slice::<Signature>(&bytes)
                .map_err(|e| Refusal::Signature(format!("{SIGNATURE}: {e}")))?,
        ),
        None => None,
    };
    check_manifest(&manifest)?;
    for rule in &manifest.rules {
        let bytes = files.get(&rule.component).ok_or_else(|| {
            Refusal::Malformed(format!(
                "{} is named in the manifest but missing",
                rule.component
            ))
        })?;
        if sha256_hex(bytes) != rule.sha256 {
            return Err(Refusal::Digest(format!(
                "{}: its SHA-256 does not match the manifest (tampered, or not packed with `rules pack`)",
                rule.component
            )));
        }
    }
    if let Some(extra) = files
        .keys()
        .find(|f| !manifest.rules.iter().any(|r| &r.component == *f))
    {
        return Err(Refusal::Malformed(format!(
            "{extra} is not named in the manifest"
        )));
    }
    Ok(Bundle {
        manifest_bytes,
        manifest,
        files,
        signature,
        digest,
    })
}

pub fn check_manifest(m: &Manifest) -> Result<(), Refusal> {
    let name_ok = !m.name.is_empty()
        && m.name.len() <= 64
        && m.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err(Refusal::Invalid(format!(
            "bundle name {:?}: 1-64 letters, digits, '-', '_' or '.'",
            m.name
        )));
    }
    // Control characters (NUL above all, which PostgreSQL cannot store)
    // would make the revision unprintable in the history, or unstorable.
    if m.revision.trim().is_empty()
        || m.revision.len() > 128
        || m.revision.chars().any(char::is_control)
    {
        return Err(Refusal::Invalid(
            "revision: 1-128 characters, no control characters".into(),
        ));
    }
    if m.rules.is_empty() {
        return Err(Refusal::Invalid("a bundle needs at least one rule".into()));
    }
    for (i, rule) in m.rules.iter().enumerate() {
        if !plain_path(&rule.component) || rule.component == MANIFEST {
            return Err(Refusal::Malformed(format!(
                "component path {:?} is not allowed",
                rule.component
            )));
        }
        check_range(i, "priority", rule.priority, &PRIORITY_RANGE).map_err(Refusal::Invalid)?;
        check_range(
            i,
            "limits.deadline_ms",
            rule.limits.deadline_ms,
            &DEADLINE_MS_RANGE,
        )
        .map_err(Refusal::Limits)?;
        check_range(
            i,
            "limits.memory_mb",
            rule.limits.memory_mb,
            &MEMORY_MB_RANGE,
        )
        .map_err(Refusal::Limits)?;
        if rule.promote_skip_filters.len() > MAX_FILES {
            return Err(Refusal::Invalid(format!(
                "rules[{i}].promote_skip_filters: at most {MAX_FILES} names"
            )));
        }
    }
    Ok(())
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    rule: usize,
    field: &str,
    value: Option<T>,
    range: &std::ops::RangeInclusive<T>,
) -> Result<(), String> {
    match value {
        Some(v) if !range.contains(&v) => Err(format!(
            "rules[{rule}].{field}: {v} is out of range ({} to {})",
            range.start(),
            range.end()
        )),
        _ => Ok(()),
    }
}

/// Builds an archive from a manifest and the files it names (in the
/// manifest's order, with fixed metadata, so the same input packs to the
/// same bytes).
pub fn pack(
    manifest_bytes: &[u8],
    files: &[(String, Vec<u8>)],
    signature: Option<&Signature>,
) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut add = |path: &str, bytes: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes)
    };
    add(MANIFEST, manifest_bytes)?;
    for (path, bytes) in files {
        add(path, bytes)?;
    }
    if let Some(sig) = signature {
        add(SIGNATURE, &serde_json::to_vec_pretty(sig)?)?;
    }
    tar.into_inner()?.finish()
}

/// `rules pack`: reads `dir/manifest.json`, fills in each component's
/// SHA-256 (the files are read relative to `dir`), and packs.
pub fn pack_dir(dir: &std::path::Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(dir.join(MANIFEST))
        .map_err(|e| format!("{}: {e}", dir.join(MANIFEST).display()))?;
    let mut manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| format!("{MANIFEST}: {e}"))?;
    check_manifest(&manifest).map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for rule in &mut manifest.rules {
        let bytes = std::fs::read(dir.join(&rule.component))
            .map_err(|e| format!("{}: {e}", rule.component))?;
        rule.sha256 = sha256_hex(&bytes);
        files.push((rule.component.clone(), bytes));
    }
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    pack(&manifest_bytes, &files, None).map_err(|e| e.to_string())
}

/// `rules sign`: the same bundle with `signature.json` added (or replaced).
pub fn resign(archive: &[u8], signature: &Signature) -> Result<Vec<u8>, String> {
    let bundle = unpack(archive, BundleCaps::NONE).map_err(|e| e.to_string())?;
    let files: Vec<(String, Vec<u8>)> = bundle
        .manifest
        .rules
        .iter()
        .map(|r| (r.component.clone(), bundle.files[&r.component].clone()))
        .collect();
    pack(&bundle.manifest_bytes, &files, Some(signature)).map_err(|e| e.to_string())
}
