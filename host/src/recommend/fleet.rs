//! Models trained once for a fleet: the binary form a trained [`Snapshot`]
//! is stored in (versioned, checksummed), and what tells whether a stored
//! snapshot may be served here (same layout, same training settings).
//!
//! The replica that trains stores its snapshot in the database
//! (`store::model_snapshots`) and announces it; the others load it instead
//! of training, and a replica that starts loads the newest one. Which
//! replica trains on schedule is the job system's once-per-fleet slot.

use recengine_models::ModelsConfig;
use sha2::{Digest, Sha256};

use super::snapshot::Snapshot;
use crate::features::Confidence;

/// The layout of the stored bytes; a change that older replicas cannot
/// read bumps it, and they train their own until they are upgraded.
pub const FORMAT: i32 = 1;

/// The bytes every stored snapshot starts with, then [`FORMAT`] (u32 LE).
const MAGIC: &[u8; 8] = b"RECSNAP\0";

/// The snapshot in its stored form: [`MAGIC`], [`FORMAT`], then the
/// models and id maps in postcard's compact binary encoding.
pub fn encode(snapshot: &Snapshot) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1 << 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(FORMAT as u32).to_le_bytes());
    postcard::to_io(snapshot, &mut out)?;
    Ok(out)
}

/// A snapshot back from [`encode`]'s bytes.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Snapshot> {
    let header = MAGIC.len() + 4;
    anyhow::ensure!(
        bytes.len() >= header && &bytes[..MAGIC.len()] == MAGIC,
        "not a model snapshot"
    );
    let format = u32::from_le_bytes(bytes[MAGIC.len()..header].try_into()?);
    anyhow::ensure!(
        format == FORMAT as u32,
        "snapshot format {format}, this build reads {FORMAT}"
    );
    let (snapshot, rest): (Snapshot, &[u8]) = postcard::take_from_bytes(&bytes[header..])?;
    anyhow::ensure!(rest.is_empty(), "{} bytes after the snapshot", rest.len());
    Ok(snapshot)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A digest of everything training depends on besides the data: models
/// trained under other settings are not served here (a rolling change of
/// `HYBRID_ALPHA`, say, takes effect on each replica as it restarts).
pub fn settings_digest(config: &ModelsConfig, confidence: &Confidence) -> String {
    sha256_hex(format!("{config:?}|{}|format {FORMAT}", confidence.describe()).as_bytes())
}

/// This process's name in the fleet: host, process id and a random part
/// (two replicas in one process, as in the tests, differ too).
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..6])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use recengine_models::{Algorithm, content::ItemText};

    use super::*;
    use crate::recommend::snapshot::TrainingRows;

    fn trained() -> Snapshot {
        let items = (0..12i64)
            .map(|id| {
                let text = ItemText {
                    title: format!("item {id}"),
                    description: String::new(),
                    category: format!("c{}", id % 3),
                    tags: vec![format!("t{}", id % 4)],
                };
                (id + 100, 0.0, text)
            })
            .collect();
        let interactions = (0..40i64)
            .map(|n| (n % 9, 100 + (n * 5) % 12, 1.0, n * 86_400_000))
            .collect();
        Snapshot::train(
            7,
            TrainingRows {
                items,
                interactions,
            },
            ModelsConfig::default(),
            Duration::ZERO,
        )
    }

    #[test]
    fn a_decoded_snapshot_recommends_what_the_trained_one_did() {
        let snapshot = trained();
        let bytes = encode(&snapshot).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back.item_ids, snapshot.item_ids);
        assert_eq!(back.user_index, snapshot.user_index);
        let profile = snapshot.profile(&[(101, 1.0), (106, 0.5)]);
        for algorithm in [
            Algorithm::Ease,
            Algorithm::ItemKnn,
            Algorithm::UserKnn,
            Algorithm::ContentBased,
            Algorithm::Als,
            Algorithm::Hybrid(recengine_models::models::HybridMethod::Weighted),
        ] {
            let a = snapshot.candidates(algorithm, &profile, Some(1), 5, &|_| true);
            let b = back.candidates(algorithm, &profile, Some(1), 5, &|_| true);
            assert_eq!(a, b, "{algorithm:?}");
        }
    }

    #[test]
    fn damaged_or_foreign_bytes_are_refused() {
        let bytes = encode(&trained()).unwrap();
        assert!(decode(&bytes[..bytes.len() / 2]).is_err(), "truncated");
        assert!(decode(b"not a snapshot at all").is_err());
        let mut newer = bytes.clone();
        newer[8] = 99;
        let Err(e) = decode(&newer) else {
            panic!("a newer format decoded")
        };
        let e = e.to_string();
        assert!(e.contains("format 99"), "{e}");
        let mut trailing = bytes;
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }

    #[test]
    fn the_settings_digest_changes_with_any_training_setting() {
        let settings = crate::config::Settings::for_tests("sqlite::memory:");
        let confidence = Confidence::from_settings(&settings);
        let base = settings_digest(&settings.models_config(), &confidence);
        assert_eq!(
            base,
            settings_digest(&settings.models_config(), &confidence)
        );
        let mut other = settings.clone();
        other.hybrid_alpha = 0.3;
        assert_ne!(base, settings_digest(&other.models_config(), &confidence));
        let mut ratings = settings.clone();
        ratings.ratings_as_weights = !settings.ratings_as_weights;
        assert_ne!(
            base,
            settings_digest(
                &settings.models_config(),
                &Confidence::from_settings(&ratings)
            )
        );
    }
}
