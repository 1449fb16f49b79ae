//! Telemetry: structured logs, the per-request middleware (request id,
//! access log), and Prometheus metrics.

pub mod logging;
pub mod metrics;
pub mod request;
