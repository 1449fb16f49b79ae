//! The built-in rules, compiled from `builtin-rules/` by the build script and
//! embedded in the binary.

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
