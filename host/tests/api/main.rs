//! HTTP-level tests: the real router on a real socket, against SQLite and
//! PostgreSQL. One binary, so the build links once. Each module tests one
//! concern; what more than one needs is in `helpers`, never imported from
//! another test module.

mod helpers;

mod auth;
mod authoring;
mod bad_input;
mod bundles;
mod catalogue;
mod console;
mod contract;
mod fleet;
mod import;
mod jobs;
mod languages;
mod logs;
mod metrics;
mod openapi;
mod outages;
mod rate_limits;
mod recommender;
mod rules;
mod server;
mod walkthrough;
