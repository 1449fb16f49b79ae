//! Uploads on their way to activation, and the last few that finished:
//! what a caller polls after uploading with `Prefer: respond-async`, and
//! what a bundle's status shows while its next revision compiles (an
//! interpreted rule takes 10-20 s to compile on two cores).
//!
//! Bounded twice: at most [`MAX_IN_FLIGHT`] uploads wait or run at once
//! (each holds its archive in memory until its turn), and at most
//! [`MAX_KEPT`] are remembered; the oldest finished one goes first.

use std::{collections::VecDeque, sync::Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::lifecycle::ActivationReport;

/// Uploads waiting for their turn or being prepared, at most.
pub const MAX_IN_FLIGHT: usize = 4;
/// Uploads remembered, finished ones included.
pub const MAX_KEPT: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadState {
    /// Received; waiting for the activation before it to finish.
    Queued,
    /// Being unpacked, verified, compiled and tried.
    Preparing,
    /// Live: its rules serve requests.
    Active,
    /// Refused; `error` says why. The active rules did not change.
    Refused,
}

/// One upload, as far as it got.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadProgress {
    /// The archive's SHA-256: the upload's id.
    pub digest: String,
    pub state: UploadState,
    /// The bundle's name and revision, once its manifest is read.
    pub name: Option<String>,
    pub revision: Option<String>,
    /// The components the bundle holds, and how many are compiled and
    /// checked so far.
    pub components: usize,
    pub components_ready: usize,
    /// The component being compiled or checked now.
    pub current: Option<String>,
    pub received_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it was refused.
    pub error: Option<String>,
    /// The activation, once live.
    pub report: Option<ActivationReport>,
}

impl UploadProgress {
    pub fn in_flight(&self) -> bool {
        matches!(self.state, UploadState::Queued | UploadState::Preparing)
    }
}

/// Why an upload was not taken.
#[derive(Debug)]
pub enum NotTaken {
    /// The same archive is already on its way.
    AlreadyInFlight(Box<UploadProgress>),
    /// [`MAX_IN_FLIGHT`] uploads are.
    Busy,
}

#[derive(Default)]
pub struct Uploads {
    kept: Mutex<VecDeque<UploadProgress>>,
}

impl Uploads {
    /// Registers a received archive, queued.
    pub fn receive(&self, digest: &str) -> Result<UploadProgress, NotTaken> {
        let mut kept = self.kept.lock().expect("not poisoned");
        if let Some(same) = kept.iter().find(|u| u.digest == digest && u.in_flight()) {
            return Err(NotTaken::AlreadyInFlight(Box::new(same.clone())));
        }
        if kept.iter().filter(|u| u.in_flight()).count() >= MAX_IN_FLIGHT {
            return Err(NotTaken::Busy);
        }
        // A finished upload of the same archive gives way to this one, so
        // a digest names one entry.
        kept.retain(|u| u.digest != digest);
        while kept.len() >= MAX_KEPT {
            let Some(oldest_finished) = kept.iter().position(|u| !u.in_flight()) else {
                break;
            };
            kept.remove(oldest_finished);
        }
        let upload = UploadProgress {
            digest: digest.to_string(),
            state: UploadState::Queued,
            name: None,
            revision: None,
            components: 0,
            components_ready: 0,
            current: None,
            received_at: Utc::now(),
            finished_at: None,
            error: None,
            report: None,
        };
        kept.push_back(upload.clone());
        Ok(upload)
    }

    /// Changes the upload with this digest, if it is still kept.
    pub fn update(&self, digest: &str, change: impl FnOnce(&mut UploadProgress)) {
        let mut kept = self.kept.lock().expect("not poisoned");
        if let Some(upload) = kept.iter_mut().find(|u| u.digest == digest) {
            change(upload);
        }
    }

    /// Records how the upload ended.
    pub fn finish(&self, digest: &str, outcome: Result<&ActivationReport, String>) {
        self.update(digest, |u| {
            u.finished_at = Some(Utc::now());
            u.current = None;
            match outcome {
                Ok(report) => {
                    u.state = UploadState::Active;
                    u.components_ready = u.components;
                    u.report = Some(report.clone());
                }
                Err(reason) => {
                    u.state = UploadState::Refused;
                    u.error = Some(reason);
                }
            }
        });
    }

    pub fn get(&self, digest: &str) -> Option<UploadProgress> {
        let kept = self.kept.lock().expect("not poisoned");
        kept.iter().find(|u| u.digest == digest).cloned()
    }

    /// Every kept upload, newest first.
    pub fn list(&self) -> Vec<UploadProgress> {
        let kept = self.kept.lock().expect("not poisoned");
        kept.iter().rev().cloned().collect()
    }

    /// The uploads of this bundle still on their way.
    pub fn in_flight_for(&self, name: &str) -> Vec<UploadProgress> {
        let kept = self.kept.lock().expect("not poisoned");
        kept.iter()
            .filter(|u| u.in_flight() && u.name.as_deref() == Some(name))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_bounded_in_flight_and_kept() {
        let uploads = Uploads::default();
        for i in 0..MAX_IN_FLIGHT {
            uploads.receive(&format!("d{i}")).unwrap();
        }
        assert!(matches!(uploads.receive("more"), Err(NotTaken::Busy)));
        assert!(matches!(
            uploads.receive("d0"),
            Err(NotTaken::AlreadyInFlight(u)) if u.digest == "d0"
        ));
        // Finishing one lets another in; finished ones are forgotten
        // oldest first once MAX_KEPT are kept.
        for i in 0..MAX_KEPT * 2 {
            uploads.finish(&format!("d{i}"), Err("refused".into()));
            uploads.receive(&format!("d{}", i + MAX_IN_FLIGHT)).unwrap();
        }
        let kept = uploads.list();
        assert_eq!(kept.len(), MAX_KEPT);
        assert_eq!(kept.iter().filter(|u| u.in_flight()).count(), MAX_IN_FLIGHT);
        assert!(uploads.get("d0").is_none(), "the oldest finished is gone");
        // The same archive again, once finished, replaces its entry.
        let last_finished = format!("d{}", MAX_KEPT * 2 - 1);
        assert_eq!(
            uploads.get(&last_finished).unwrap().state,
            UploadState::Refused
        );
        uploads.finish(&format!("d{}", MAX_KEPT * 2), Err("x".into()));
        uploads.receive(&last_finished).unwrap();
        assert_eq!(
            uploads.get(&last_finished).unwrap().state,
            UploadState::Queued
        );
        assert_eq!(
            uploads
                .list()
                .iter()
                .filter(|u| u.digest == last_finished)
                .count(),
            1
        );
    }
}
