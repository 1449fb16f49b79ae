//! Authentication and authorisation.
//!
//! - [`password`]: argon2id hashing, constant-time verification.
//! - [`tokens`]: HS256 access and refresh JWTs.
//! - [`session`]: login, refresh rotation with reuse detection, logout.
//! - [`extract`]: the `CurrentUser`, `Ops` and `Admin` extractors and the
//!   role checks a handler makes against a path or body value.
//! - [`bootstrap`]: the first admin (CLI or `INITIAL_ADMIN_*` at start).
//! - [`identify`]: middleware that reads (not enforces) the bearer token, so
//!   rate limits and access logs know who is calling.

pub mod bootstrap;
pub mod extract;
pub mod identify;
pub mod password;
pub mod session;
pub mod tokens;
