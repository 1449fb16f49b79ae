//! Telemetry: structured logs and the per-request middleware (request id,
//! access log). Metrics join here.

pub mod logging;
pub mod request;
