//! Business rules as sandboxed WebAssembly components.
//!
//! # Layout
//! - [`engine`]: one wasmtime engine for the process, the sandbox (epoch
//!   deadline, memory cap, no filesystem, network or environment), compiling
//!   and instantiating components, and calling them.
//! - [`input`]: what rules may read (the catalogue of inputs, checked at
//!   load), gathering the union the active rules declare once per request,
//!   and encoding it as the columns each rule sees (`wit/rules.wit`, and
//!   0.1's fixed columns for rules built against it).
//! - [`pipeline`]: runs a rule set over a candidate list by priority,
//!   enforcing each kind's contract and each rule's failure policy, and
//!   recording the trace; then vets and places what promote rules asked
//!   for.
//! - [`registry`]: the current rule set, swapped atomically; a request holds
//!   one snapshot from start to end. Each rule knows its source: built in,
//!   the rules directory, or a bundle.
//! - [`runner`]: the one way a request runs through the rules (and the
//!   shadow bundle beside them), used by recommendations and the dry run.
//! - [`builtin`]: the built-in components embedded at build time.
//! - [`admin`]: listing and changing rules at run time, persisted.
//! - [`author`]: `rules new` (a rule project from a template) and `rules
//!   test` (a bundle run in a throwaway engine), for rule authors.
//! - [`bundle`]: signed archives of rules, activated as a whole across the
//!   fleet, rolled back, or run in shadow.

pub mod admin;
pub mod author;
pub mod builtin;
pub mod bundle;
pub mod engine;
pub mod input;
pub mod pipeline;
pub mod registry;
pub mod runner;

/// Bindings generated from the WIT contracts the host speaks: the current
/// one (`wit/rules.wit`, the same file the SDK uses) and 0.1
/// (`wit/0.1.0/rules.wit`), so components built against it still run.
pub mod bindings {
    /// `recengine:rules@0.2.0`.
    pub mod v0_2 {
        wasmtime::component::bindgen!({
            path: "../wit/rules.wit",
            world: "rule",
        });
    }

    /// `recengine:rules@0.1.0`.
    pub mod v0_1 {
        wasmtime::component::bindgen!({
            path: "../wit/0.1.0/rules.wit",
            world: "rule",
        });
    }
}
