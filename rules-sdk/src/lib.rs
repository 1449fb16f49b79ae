//! The SDK for recengine business rules.
//!
//! A rule is a WebAssembly component that implements the `recengine:rules`
//! WIT contract in `wit/`. This crate will hide the generated bindings behind
//! typed Rust (`Candidate`, `User`, `Context`, `Decision`) and provide a
//! native test harness; see the repository README for the plan.

/// The version of the rule contract this SDK targets. The host refuses
/// components built against an incompatible contract.
pub const CONTRACT_VERSION: &str = "0.1.0";
