//! Progress of a long import: a line on a terminal, redrawn in place, or a
//! log line per tenth of the work where stderr is not a terminal (a log
//! collector wants ten lines, not ten thousand).

use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};

/// A progress line on a terminal (redrawn at most five times a second), a
/// log line per tenth otherwise.
pub struct Progress {
    /// What runs ("MovieLens import"), for the log line.
    task: &'static str,
    label: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last_drawn: Instant,
    logged_tenths: u64,
    terminal: bool,
}

impl Progress {
    pub fn new(task: &'static str, label: &'static str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            task,
            label,
            total,
            done: 0,
            started: now,
            last_drawn: now,
            logged_tenths: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        if self.terminal {
            if self.last_drawn.elapsed() >= Duration::from_millis(200) || self.done == self.total {
                self.last_drawn = Instant::now();
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r{}: {} / {} ({:.0}%), {:.0}/s   ",
                    self.label,
                    self.done,
                    self.total,
                    100.0 * self.done as f64 / self.total.max(1) as f64,
                    rate
                );
                let _ = err.flush();
            }
        } else {
            let tenths = self.done * 10 / self.total.max(1);
            if tenths > self.logged_tenths {
                self.logged_tenths = tenths;
                tracing::info!(
                    what = self.label,
                    done = self.done,
                    total = self.total,
                    per_second = rate.round(),
                    "{}",
                    self.task
                );
            }
        }
    }

    pub fn finish(&self) {
        if self.terminal && self.total > 0 {
            eprintln!();
        }
    }
}
