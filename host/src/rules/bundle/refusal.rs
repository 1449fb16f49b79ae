//! Why a bundle was refused. The message is what the operator reads (the
//! 422 response, the history, `last_error`); the variant is its cause, the
//! low-cardinality label of `bundle_failures_total`. Each check names its
//! cause where it refuses, so rewording a message never moves a label.

/// A refused bundle: its cause (the variant) and what to tell the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The archive, or what it unpacks to, is larger than accepted.
    #[error("{0}")]
    Size(String),
    /// Not a readable bundle: not a gzip'd tar, a path not allowed, the
    /// manifest missing or unreadable, a file it does not name.
    #[error("{0}")]
    Malformed(String),
    /// A component differs from the digest in its manifest.
    #[error("{0}")]
    Digest(String),
    /// Unsigned while signatures are required, or a signature that does
    /// not verify.
    #[error("{0}")]
    Signature(String),
    /// A limit outside what the bundle may ask for.
    #[error("{0}")]
    Limits(String),
    /// A component trapped, overran or broke its kind's contract on the
    /// sample request.
    #[error("{0}")]
    DryRun(String),
    /// A rule name taken by another source, or a revision uploaded before
    /// with different content.
    #[error("{0}")]
    Conflict(String),
    /// Any other check: a component that does not load, a setting out of
    /// range, a rule named twice...
    #[error("{0}")]
    Invalid(String),
    /// The fleet's active revision, refused by this replica when it synced.
    #[error("the stored active revision was not loaded: {0}")]
    NotLoaded(Box<Refusal>),
}

impl Refusal {
    /// The `cause` label of the failure counter.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Size(_) => "size",
            Refusal::Malformed(_) => "malformed",
            Refusal::Digest(_) => "digest",
            Refusal::Signature(_) => "signature",
            Refusal::Limits(_) => "limits",
            Refusal::DryRun(_) => "dry_run",
            Refusal::Conflict(_) => "conflict",
            Refusal::Invalid(_) => "invalid",
            Refusal::NotLoaded(cause) => cause.label(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_at_sync_keeps_the_cause_and_says_where() {
        let at_sync = Refusal::NotLoaded(Box::new(Refusal::Signature(
            "the bundle is not signed, and signatures are required".into(),
        )));
        assert_eq!(at_sync.label(), "signature");
        assert_eq!(
            at_sync.to_string(),
            "the stored active revision was not loaded: the bundle is not signed, and signatures are required"
        );
    }
}
