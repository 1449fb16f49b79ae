//! The watched rules directory: a bundle (`*.tar.gz`) dropped or replaced
//! there is activated within a second or two. Polling, not inotify: it
//! works the same on every filesystem (network mounts, container volumes)
//! and a half-written file is simply seen again on the next tick.

use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use super::{BundleError, BundleManager, format::sha256_hex};

pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

fn bundles_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    paths.sort();
    paths
}

/// Activates what changed since the last look; remembers each file's
/// digest so an unchanged file is not activated twice (nor a refused one
/// retried until it changes). On the first look after a start, a file
/// whose bytes were uploaded before is taken as already handled.
pub async fn scan(
    manager: &Arc<BundleManager>,
    dir: &std::path::Path,
    seen: &mut HashMap<PathBuf, String>,
) -> usize {
    let mut activated = 0;
    for path in bundles_in(dir) {
        let Ok(bytes) = tokio::fs::read(&path).await else {
            continue;
        };
        let digest = sha256_hex(&bytes);
        if seen.get(&path) == Some(&digest) {
            continue;
        }
        let first_look = !seen.contains_key(&path);
        seen.insert(path.clone(), digest.clone());
        // A file already activated once (before a restart, or by another
        // replica sharing the directory) is not activated again: that
        // would undo a rollback made since. Replacing the file activates.
        if first_look && manager.known(&digest).await {
            continue;
        }
        match manager.activate(bytes, "rules_dir").await {
            Ok(report) => {
                activated += 1;
                tracing::info!(file = %path.display(), bundle = %report.name, revision = %report.revision, "bundle from the rules directory activated");
            }
            Err(BundleError::Busy | BundleError::InFlight(_)) => {
                // Not looked at yet: try again at the next poll.
                seen.remove(&path);
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "bundle in the rules directory refused")
            }
        }
    }
    activated
}

pub fn spawn(
    manager: Arc<BundleManager>,
    dir: PathBuf,
    on_change: impl Fn() + Send + Sync + 'static,
) {
    tokio::spawn(async move {
        let mut seen = HashMap::new();
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if scan(&manager, &dir, &mut seen).await > 0 {
                on_change();
            }
        }
    });
}
