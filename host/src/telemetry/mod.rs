//! Telemetry: structured logs, the per-request middleware (request id,
//! access log), Prometheus metrics, and the process's peak memory.

pub mod logging;
pub mod memory;
pub mod metrics;
pub mod request;
