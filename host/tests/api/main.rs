//! HTTP-level tests: the real router on a real socket, against SQLite and
//! PostgreSQL. One binary, so the build links once.

mod helpers;

mod auth;
mod bad_input;
mod bundles;
mod catalogue;
mod console;
mod fleet;
mod import;
mod jobs;
mod logs;
mod metrics;
mod openapi;
mod outages;
mod rate_limits;
mod recommender;
mod rules;
mod server;
mod walkthrough;
mod wasm;
