//! Waiting on a running service: for something to happen (`eventually`,
//! `eventually_some`) or for something not to (`holds_throughout`). Each
//! states its bound, polls every 50 ms, and fails naming what it waited
//! for: a wait never falls through silently.

use std::{
    fmt::Display,
    time::{Duration, Instant},
};

const POLL: Duration = Duration::from_millis(50);

/// Polls `check` for up to `within`; the elapsed time when it first held,
/// or a panic naming `what`.
pub async fn eventually(
    within: Duration,
    what: impl Display,
    mut check: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    eventually_some(within, what, async || check().await.then_some(())).await;
    start.elapsed()
}

/// Polls `check` for up to `within` until it gives a value, and returns
/// it; a panic naming `what` if it never does.
pub async fn eventually_some<T>(
    within: Duration,
    what: impl Display,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` for the whole of `window` and panics, naming `what`, the
/// first time it does not hold: how a test says that something does not
/// happen (a refused file is not activated, a threshold is not reached),
/// rather than sleeping and looking once.
pub async fn holds_throughout(
    window: Duration,
    what: impl Display,
    mut check: impl AsyncFnMut() -> bool,
) {
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        assert!(check().await, "{what}: broken after {elapsed:?}");
        if elapsed >= window {
            return;
        }
        tokio::time::sleep(POLL.min(window - elapsed)).await;
    }
}
