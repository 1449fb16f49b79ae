//! Business rules as sandboxed WebAssembly components.
//!
//! # Layout
//! - [`engine`]: one wasmtime engine for the process, the sandbox (epoch
//!   deadline, memory cap, no filesystem, network or environment), compiling
//!   and instantiating components, and calling them.
//! - [`input`]: turns items, a user and a request context into the columns
//!   a rule sees (the encoding of `wit/rules.wit`).
//! - [`pipeline`]: runs a rule set over a candidate list by priority,
//!   enforcing each kind's contract and each rule's failure policy, and
//!   recording the trace.
//! - [`registry`]: the current rule set, swapped atomically; a request holds
//!   one snapshot from start to end. Each rule knows its source: built in,
//!   the rules directory, or a bundle.
//! - [`runner`]: the one way a request runs through the rules (and the
//!   shadow bundle beside them), used by recommendations and the dry run.
//! - [`builtin`]: the eight built-in components embedded at build time.
//! - [`admin`]: listing and changing rules at run time, persisted.
//! - [`bundle`]: signed archives of rules, activated as a whole across the
//!   fleet, rolled back, or run in shadow.

pub mod admin;
pub mod builtin;
pub mod bundle;
pub mod engine;
pub mod input;
pub mod pipeline;
pub mod registry;
pub mod runner;

/// Bindings generated from `wit/rules.wit`, the same file the SDK uses.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "rule",
    });
}
