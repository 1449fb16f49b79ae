//! How much is logged and in which shape (`LOG_LEVEL`, `LOG_FORMAT`).

use std::str::FromStr;

use super::{Settings, env::Env};

/// The shape of a log line (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "pretty" | "text" => Ok(Self::Pretty),
            _ => Err("expected json or pretty".into()),
        }
    }
}

pub(super) fn read(env: &mut Env, s: &mut Settings) {
    env.read_with("LOG_LEVEL", &mut s.log_level, |v| {
        Ok(match v.to_ascii_lowercase().as_str() {
            "trace" => tracing::Level::TRACE,
            "debug" => tracing::Level::DEBUG,
            "info" => tracing::Level::INFO,
            "warn" | "warning" => tracing::Level::WARN,
            "error" => tracing::Level::ERROR,
            _ => return Err("expected trace, debug, info, warn or error".into()),
        })
    });
    env.read("LOG_FORMAT", &mut s.log_format);
}
