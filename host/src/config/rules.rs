//! Business rules: whether they run, the diversity rule's default, the rule
//! sandbox's limits, where rule components and bundles come from, and the
//! keys bundles must be signed with.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use ed25519_dalek::VerifyingKey;

use super::{Settings, env::Env};

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.flag("ENABLE_BUSINESS_RULES", &mut s.enable_business_rules);
    env.read(
        "DIVERSITY_MAX_PER_CATEGORY",
        &mut s.diversity_max_per_category,
    );
    if s.diversity_max_per_category == 0 {
        env.error("DIVERSITY_MAX_PER_CATEGORY must be at least 1");
    }
    env.read("RULE_DEADLINE_MS", &mut s.rule_deadline_ms);
    env.read("RULE_MEMORY_MB", &mut s.rule_memory_mb);
    if !(1..=10_000).contains(&s.rule_deadline_ms) || !(1..=256).contains(&s.rule_memory_mb) {
        env.error("RULE_DEADLINE_MS must be 1..=10000 and RULE_MEMORY_MB 1..=256");
    }
    env.read("RULE_CONCURRENCY", &mut s.rule_concurrency);
    if !(1..=1024).contains(&s.rule_concurrency) {
        env.error("RULE_CONCURRENCY must be 1..=1024");
    }
    env.read("RULES_DIR", &mut s.rules_dir);
    if let Some(dir) = env.get("COMPILED_RULES_DIR") {
        s.compiled_rules_dir = (dir.trim() != "off").then(|| dir.trim().into());
    }
    env.read("MAX_BUNDLE_BYTES", &mut s.max_bundle_bytes);
    env.read(
        "MAX_BUNDLE_UNPACKED_BYTES",
        &mut s.max_bundle_unpacked_bytes,
    );
    if s.max_bundle_bytes == 0 || !(1..u64::MAX).contains(&s.max_bundle_unpacked_bytes) {
        env.error("MAX_BUNDLE_BYTES and MAX_BUNDLE_UNPACKED_BYTES must be at least 1");
    }
    if let Some(spec) = env.get("BUNDLE_PUBLIC_KEYS") {
        match TrustedKeys::parse(&spec) {
            Ok(keys) => s.bundle_public_keys = keys,
            Err(e) => env.error(format!("BUNDLE_PUBLIC_KEYS: {e}")),
        }
    }
}

/// How large a bundle may be, packed and unpacked (`MAX_BUNDLE_BYTES`,
/// `MAX_BUNDLE_UNPACKED_BYTES`).
///
/// Sized for interpreted rules: a Python component is ~18 MB (~6 MB
/// gzip'd) and a JavaScript one ~12 MB (~4 MB), so the defaults hold eight
/// or more of them. An activation holds one unpacked bundle at a time (they
/// take turns), so the unpacked cap is also the most an activation holds
/// in memory besides the compiler's own; it is what stops a zip bomb.
#[derive(Debug, Clone, Copy)]
pub struct BundleCaps {
    pub archive_bytes: usize,
    pub unpacked_bytes: u64,
}

impl BundleCaps {
    pub const DEFAULT: BundleCaps = BundleCaps {
        archive_bytes: 64 << 20,
        unpacked_bytes: 256 << 20,
    };
    /// For the command line, on the operator's own files.
    pub const NONE: BundleCaps = BundleCaps {
        archive_bytes: usize::MAX,
        unpacked_bytes: u64::MAX - 1,
    };
}

/// The ed25519 public keys rule bundles may be signed with, by key id.
/// Parsed here, with the settings; checking a bundle's signature against
/// them is `rules::bundle::signing`'s.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(Vec<(String, VerifyingKey)>);

impl TrustedKeys {
    /// `id:base64,id:base64`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry
                .split_once(':')
                .ok_or_else(|| format!("{entry:?}: expected key-id:base64"))?;
            let key = VerifyingKey::from_bytes(&decode_key(key, id)?)
                .map_err(|e| format!("{id}: not an ed25519 public key ({e})"))?;
            keys.push((id.trim().to_string(), key));
        }
        Ok(Self(keys))
    }

    /// No keys: signatures are not checked.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key with this id.
    pub fn get(&self, id: &str) -> Option<&VerifyingKey> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }
}

/// An ed25519 key (public or private) from the base64 of its 32 raw bytes;
/// `what` names it in the error.
pub(crate) fn decode_key(text: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("{what}: not base64 ({e})"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what}: an ed25519 key is 32 bytes"))
}
